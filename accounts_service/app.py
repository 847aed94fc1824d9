"""create_app(settings): keys, resources, middleware and routes. No I/O at import."""

from __future__ import annotations

from aiohttp import web

from accounts_service import api_schema, console, handlers
from accounts_service.keys import (
    COORDINATOR_KEY,
    CUSTOMERS_KEY,
    ENGINE_KEY,
    METRICS_KEY,
    RELEASE_SIGNALS_KEY,
    SETTINGS_KEY,
)
from accounts_service.metrics import ParticipantMetrics
from accounts_service.participant import ReleaseSignals
from accounts_service.recovery import recovery_context
from accounts_service.settings import Settings
from shared.api_docs import install_openapi
from shared.auth import ACCOUNTS_SERVICE_NAME, CUSTOMER_SERVICE_NAME, TRANSACTIONS_SERVICE_NAME
from shared.revocation import http_fetch, revocation_context
from shared.service_app import PeerClients, create_service_app, registry_of

SERVICE_NAME = ACCOUNTS_SERVICE_NAME


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(SERVICE_NAME, settings, coordinator_key_holder=True)
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = ParticipantMetrics(registry_of(app))
    app[RELEASE_SIGNALS_KEY] = ReleaseSignals()
    # Sized to our database pool: no more requests to a peer at once than we could serve ourselves.
    peers = PeerClients(SERVICE_NAME, settings.http_timeout_s, connections=settings.db_pool_size)
    app.cleanup_ctx.append(peers.client(CUSTOMERS_KEY, settings.customer_service_url, CUSTOMER_SERVICE_NAME))
    app.cleanup_ctx.append(peers.client(COORDINATOR_KEY, settings.transactions_service_url, TRANSACTIONS_SERVICE_NAME))
    app.cleanup_ctx.append(revocation_context(http_fetch(CUSTOMERS_KEY)))
    app.cleanup_ctx.append(
        recovery_context(ENGINE_KEY, COORDINATOR_KEY, SETTINGS_KEY, METRICS_KEY, RELEASE_SIGNALS_KEY)
    )
    handlers.add_routes(app, demo_endpoints=settings.demo_endpoints)
    console.add_routes(app, demo_endpoints=settings.demo_endpoints)
    install_openapi(app, api_schema.openapi_document(demo_endpoints=settings.demo_endpoints))
    return app
