"""Typed application state keys."""
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from transactions_service.coordinator import Coordinator
from transactions_service.settings import Settings

SETTINGS_KEY = web.AppKey("settings", Settings)
ENGINE_KEY = web.AppKey("engine", AsyncEngine)
COORDINATOR_KEY = web.AppKey("coordinator", Coordinator)
