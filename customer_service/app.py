"""create_app(settings): keys, resources, middleware and routes. No I/O at import."""
from __future__ import annotations

from aiohttp import web

from customer_service import handlers
from customer_service.keys import PASSWORDS_KEY, SETTINGS_KEY
from customer_service.passwords import Passwords
from customer_service.settings import Settings
from shared.service_app import create_service_app

SERVICE_NAME = "customer-service"


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(SERVICE_NAME, database_url=settings.database_url, jwt_secret=settings.jwt_secret,
                             db_pool_size=settings.db_pool_size)
    app[SETTINGS_KEY] = settings
    app[PASSWORDS_KEY] = Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)
    handlers.add_routes(app)
    return app
