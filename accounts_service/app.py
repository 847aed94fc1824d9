"""create_app(settings): keys, resources, middleware and routes. No I/O at import."""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import db, handlers
from accounts_service.keys import COORDINATOR_KEY, CUSTOMERS_KEY, ENGINE_KEY, SETTINGS_KEY
from accounts_service.recovery import recovery_context
from accounts_service.settings import Settings
from shared.auth import JWT_SECRET_KEY
from shared.database import create_engine
from shared.http_client import ServiceClient
from shared.web import MAX_BODY_BYTES, add_health_routes, error_middleware

SERVICE_NAME = "accounts-service"


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS_KEY] = settings
    app[JWT_SECRET_KEY] = settings.jwt_secret
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_peer_clients)
    app.cleanup_ctx.append(recovery_context(ENGINE_KEY, COORDINATOR_KEY, SETTINGS_KEY))
    add_health_routes(app, SERVICE_NAME, _check_database)
    handlers.add_routes(app, demo_endpoints=settings.demo_endpoints)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    app[ENGINE_KEY] = engine
    yield
    await engine.dispose()


async def _peer_clients(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    customers = ServiceClient(settings.customer_service_url, jwt_secret=settings.jwt_secret, caller=SERVICE_NAME,
                              timeout_s=settings.http_timeout_s)
    coordinator = ServiceClient(settings.transactions_service_url, jwt_secret=settings.jwt_secret,
                                caller=SERVICE_NAME, timeout_s=settings.http_timeout_s)
    app[CUSTOMERS_KEY] = customers
    app[COORDINATOR_KEY] = coordinator
    yield
    await customers.close()
    await coordinator.close()


async def _check_database(app: web.Application) -> None:
    engine: AsyncEngine = app[ENGINE_KEY]
    async with engine.connect() as connection:
        await db.ping(connection)
