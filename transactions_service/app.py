"""create_app(settings): keys, resources, middleware and routes. No I/O at import."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from shared.api_docs import install_openapi
from shared.auth import ACCOUNTS_SERVICE_NAME, CUSTOMER_SERVICE_NAME, TRANSACTIONS_SERVICE_NAME
from shared.callers import TOKEN_KEYS_KEY
from shared.http_client import ServiceClient
from shared.revocation import http_fetch, revocation_context
from shared.service_app import PeerClients, create_service_app, registry_of
from transactions_service import access, api_schema, handlers
from transactions_service.coordinator import Coordinator
from transactions_service.keys import COORDINATOR_KEY, CUSTOMERS_KEY, ENGINE_KEY, METRICS_KEY, SETTINGS_KEY
from transactions_service.metrics import CoordinatorMetrics
from transactions_service.participants import Participants, participant_names
from transactions_service.push.channel import install_push
from transactions_service.recovery import recovery_context
from transactions_service.settings import Settings

SERVICE_NAME = TRANSACTIONS_SERVICE_NAME


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(SERVICE_NAME, settings, coordinator_key_holder=True)
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = CoordinatorMetrics(registry_of(app))
    app.cleanup_ctx.append(_coordinator)
    app.cleanup_ctx.append(recovery_context(COORDINATOR_KEY, SETTINGS_KEY))
    peers = PeerClients(SERVICE_NAME, settings.http_timeout_s)
    app.cleanup_ctx.append(peers.client(CUSTOMERS_KEY, settings.customer_service_url, CUSTOMER_SERVICE_NAME))
    app.cleanup_ctx.append(revocation_context(http_fetch(CUSTOMERS_KEY)))
    handlers.add_routes(app)
    install_push(
        app,
        settings.push,
        settings.database_url,
        clients_of=lambda app: app[COORDINATOR_KEY].participants.clients.values(),
    )
    install_openapi(app, api_schema.openapi_document())
    return app


async def _coordinator(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    # As many connections per participant as its database pool can serve at once (the same DB_POOL_SIZE):
    # more would only queue there, holding sockets and counting against our timeouts.
    clients = {
        name: ServiceClient(
            url,
            jwt_secret=app[TOKEN_KEYS_KEY],
            caller=SERVICE_NAME,
            audience=ACCOUNTS_SERVICE_NAME,
            timeout_s=settings.http_timeout_s,
            connections=settings.db_pool_size,
            coordinator=True,
        )
        for name, url in zip(participant_names(len(settings.participant_urls)), settings.participant_urls, strict=True)
    }
    participants = Participants(
        clients, prepare_timeout_s=settings.prepare_timeout_s, decision_timeout_s=settings.decision_timeout_s
    )
    app[COORDINATOR_KEY] = Coordinator(
        app[ENGINE_KEY],
        participants,
        idempotent_wait_s=settings.idempotent_wait_s,
        completion_grace_s=settings.completion_grace_s,
        metrics=app[METRICS_KEY],
        prepare_deadline_s=settings.recovery.prepare_deadline_s,
        decision_write_s=settings.decision_write_s,
        retry_first_s=settings.recovery.retry_first_s,
        retry_max_s=settings.recovery.retry_max_s,
        batch_limits=settings.batch_limits,
        transfers_in_flight_max=settings.transfers_in_flight_max,
    )
    app[access.OWNER_LOOKUP_KEY] = access.OwnerLookup(participants, settings.batch_limits)
    yield
    await app[access.OWNER_LOOKUP_KEY].close()
    await app[COORDINATOR_KEY].close()
    for client in clients.values():
        await client.close()
