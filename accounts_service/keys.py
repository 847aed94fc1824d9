"""Typed application state keys."""
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service.settings import Settings
from shared.http_client import ServiceClient

SETTINGS_KEY = web.AppKey("settings", Settings)
ENGINE_KEY = web.AppKey("engine", AsyncEngine)
CUSTOMERS_KEY = web.AppKey("customer_service", ServiceClient)
COORDINATOR_KEY = web.AppKey("transactions_service", ServiceClient)
