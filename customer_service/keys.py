"""Typed application state keys."""
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from customer_service.passwords import Passwords
from customer_service.settings import Settings

SETTINGS_KEY = web.AppKey("settings", Settings)
ENGINE_KEY = web.AppKey("engine", AsyncEngine)
PASSWORDS_KEY = web.AppKey("passwords", Passwords)
