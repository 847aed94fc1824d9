"""create_app(settings): keys, resources, middleware and routes. No I/O at import."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
from shared.auth import ACCOUNTS_SERVICE_NAME, CUSTOMER_SERVICE_NAME, TRANSACTIONS_SERVICE_NAME, load_token_keys
from shared.callers import TOKEN_KEYS_KEY
from shared.http_client import ServiceClient
from shared.revocation import http_fetch, revocation_context
from shared.service_app import create_service_app, registry_of

SERVICE_NAME = ACCOUNTS_SERVICE_NAME


def create_app(settings: Settings) -> web.Application:
    token_keys = load_token_keys(
        algorithm=settings.jwt_algorithm,
        secret=settings.jwt_secret,
        public_key_file=settings.jwt_public_key_file,
        service_token_secret=settings.service_token_secret,
        coordinator_token_secret=settings.coordinator_token_secret,
        coordinator_key_holder=True,
        dev_mode=settings.dev_mode,
    )
    app = create_service_app(
        SERVICE_NAME,
        database_url=settings.database_url,
        jwt_secret=settings.jwt_secret,
        db_pool_size=settings.db_pool_size,
        token_keys=token_keys,
        cors_allowed_origins=settings.cors_allowed_origins,
    )
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = ParticipantMetrics(registry_of(app))
    app[RELEASE_SIGNALS_KEY] = ReleaseSignals()
    app.cleanup_ctx.append(_peer_clients)
    app.cleanup_ctx.append(revocation_context(http_fetch(CUSTOMERS_KEY)))
    app.cleanup_ctx.append(
        recovery_context(ENGINE_KEY, COORDINATOR_KEY, SETTINGS_KEY, METRICS_KEY, RELEASE_SIGNALS_KEY)
    )
    handlers.add_routes(app, demo_endpoints=settings.demo_endpoints)
    console.add_routes(app, demo_endpoints=settings.demo_endpoints)
    install_openapi(app, api_schema.openapi_document(demo_endpoints=settings.demo_endpoints))
    return app


async def _peer_clients(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    keys = app[TOKEN_KEYS_KEY]
    # Sized to our database pool: no more requests to a peer at once than we could serve ourselves.
    customers = ServiceClient(
        settings.customer_service_url,
        jwt_secret=keys,
        caller=SERVICE_NAME,
        audience=CUSTOMER_SERVICE_NAME,
        timeout_s=settings.http_timeout_s,
        connections=settings.db_pool_size,
    )
    coordinator = ServiceClient(
        settings.transactions_service_url,
        jwt_secret=keys,
        caller=SERVICE_NAME,
        audience=TRANSACTIONS_SERVICE_NAME,
        timeout_s=settings.http_timeout_s,
        connections=settings.db_pool_size,
    )
    app[CUSTOMERS_KEY] = customers
    app[COORDINATOR_KEY] = coordinator
    yield
    await customers.close()
    await coordinator.close()
