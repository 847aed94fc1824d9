"""create_app(settings): keys, resources, middleware and routes. No I/O at import."""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from customer_service import db, handlers
from customer_service.keys import ENGINE_KEY, PASSWORDS_KEY, SETTINGS_KEY
from customer_service.passwords import Passwords
from customer_service.settings import Settings
from shared.auth import JWT_SECRET_KEY
from shared.database import create_engine
from shared.web import MAX_BODY_BYTES, add_health_routes, error_middleware

SERVICE_NAME = "customer-service"


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS_KEY] = settings
    app[JWT_SECRET_KEY] = settings.jwt_secret
    app[PASSWORDS_KEY] = Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)
    app.cleanup_ctx.append(_database)
    add_health_routes(app, SERVICE_NAME, _check_database)
    handlers.add_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    app[ENGINE_KEY] = engine
    yield
    await engine.dispose()


async def _check_database(app: web.Application) -> None:
    engine: AsyncEngine = app[ENGINE_KEY]
    async with engine.connect() as connection:
        await db.ping(connection)
