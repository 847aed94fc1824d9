"""create_app(settings): keys, resources, middleware and routes. No I/O at import."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from customer_service import api_schema, handlers, sessions
from customer_service.keys import ACCOUNTS_KEY, PASSWORDS_KEY, SETTINGS_KEY, THROTTLE_KEY
from customer_service.passwords import Passwords
from customer_service.settings import Settings
from customer_service.throttle import LoginThrottle
from shared.api_docs import install_openapi
from shared.auth import ACCOUNTS_SERVICE_NAME, CUSTOMER_SERVICE_NAME
from shared.revocation import revocation_context
from shared.service_app import ENGINE_KEY, PeerClients, create_service_app

SERVICE_NAME = CUSTOMER_SERVICE_NAME


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(SERVICE_NAME, settings, private_key_file=settings.jwt_private_key_file)
    app[SETTINGS_KEY] = settings
    app[THROTTLE_KEY] = LoginThrottle(
        failures_max=settings.login_failures_max,
        address_failures_max=settings.login_address_failures_max,
        window_s=settings.login_window_s,
    )
    app[PASSWORDS_KEY] = Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)
    peers = PeerClients(SERVICE_NAME, settings.http_timeout_s)
    app.cleanup_ctx.append(peers.client(ACCOUNTS_KEY, settings.accounts_service_url, ACCOUNTS_SERVICE_NAME))
    app.cleanup_ctx.append(revocation_context(_feed_from_database))
    handlers.add_routes(app)
    install_openapi(app, api_schema.openapi_document())
    return app


async def _feed_from_database(app: web.Application, after: int, limit: int) -> list[dict[str, Any]]:
    """customer_service owns the feed: it reads its own table rather than calling itself."""
    return await sessions.feed(app[ENGINE_KEY], after, limit)
