"""Typed application state keys."""

from aiohttp import web

from customer_service.passwords import Passwords
from customer_service.settings import Settings
from customer_service.throttle import LoginThrottle
from shared.http_client import ServiceClient
from shared.service_app import ENGINE_KEY  # noqa: F401 - one engine key for every service

SETTINGS_KEY = web.AppKey("settings", Settings)
PASSWORDS_KEY = web.AppKey("passwords", Passwords)
THROTTLE_KEY = web.AppKey("login_throttle", LoginThrottle)
ACCOUNTS_KEY = web.AppKey("accounts_client", ServiceClient)
