"""create_app(settings): keys, resources, middleware and routes. No I/O at import."""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from accounts_service import handlers
from accounts_service.keys import (COORDINATOR_KEY, CUSTOMERS_KEY, ENGINE_KEY, METRICS_KEY, RELEASE_SIGNALS_KEY,
                                   SETTINGS_KEY)
from accounts_service.participant import ReleaseSignals
from accounts_service.metrics import ParticipantMetrics
from accounts_service.recovery import recovery_context
from accounts_service.settings import Settings
from shared.http_client import ServiceClient
from shared.service_app import create_service_app, registry_of

SERVICE_NAME = "accounts-service"


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(SERVICE_NAME, database_url=settings.database_url, jwt_secret=settings.jwt_secret,
                             db_pool_size=settings.db_pool_size)
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = ParticipantMetrics(registry_of(app))
    app[RELEASE_SIGNALS_KEY] = ReleaseSignals()
    app.cleanup_ctx.append(_peer_clients)
    app.cleanup_ctx.append(recovery_context(ENGINE_KEY, COORDINATOR_KEY, SETTINGS_KEY, METRICS_KEY, RELEASE_SIGNALS_KEY))
    handlers.add_routes(app, demo_endpoints=settings.demo_endpoints)
    return app


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
