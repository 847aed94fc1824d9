"""create_app(settings): keys, resources, middleware and routes. No I/O at import."""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from shared.auth import JWT_SECRET_KEY
from shared.database import create_engine
from shared.http_client import ServiceClient
from shared.web import MAX_BODY_BYTES, add_health_routes, error_middleware
from transactions_service import db, handlers
from transactions_service.coordinator import Coordinator
from transactions_service.keys import COORDINATOR_KEY, ENGINE_KEY, SETTINGS_KEY
from transactions_service.participants import Participants, participant_names
from transactions_service.recovery import recovery_context
from transactions_service.settings import Settings

SERVICE_NAME = "transactions-service"


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS_KEY] = settings
    app[JWT_SECRET_KEY] = settings.jwt_secret
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_coordinator)
    app.cleanup_ctx.append(recovery_context(COORDINATOR_KEY, SETTINGS_KEY))
    add_health_routes(app, SERVICE_NAME, _check_database)
    handlers.add_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    app[ENGINE_KEY] = engine
    yield
    await engine.dispose()


async def _coordinator(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    clients = {name: ServiceClient(url, jwt_secret=settings.jwt_secret, caller=SERVICE_NAME,
                                   timeout_s=settings.http_timeout_s)
               for name, url in zip(participant_names(len(settings.participant_urls)), settings.participant_urls,
                                    strict=True)}
    participants = Participants(clients, prepare_timeout_s=settings.prepare_timeout_s,
                                decision_timeout_s=settings.decision_timeout_s)
    app[COORDINATOR_KEY] = Coordinator(app[ENGINE_KEY], participants, idempotent_wait_s=settings.idempotent_wait_s,
                                       completion_grace_s=settings.completion_grace_s)
    yield
    for client in clients.values():
        await client.close()


async def _check_database(app: web.Application) -> None:
    async with app[ENGINE_KEY].connect() as connection:
        await db.ping(connection)
