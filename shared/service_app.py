"""The skeleton every service app shares: middlewares, the token keys, security headers and CORS, the
database engine as a cleanup_ctx resource, health routes that check it, and /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from aiohttp import web
from prometheus_client import CollectorRegistry
from sqlalchemy import QueuePool, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth import TokenKeys
from shared.callers import AUDIENCE_KEY, TOKEN_KEYS_KEY
from shared.database import create_engine
from shared.health import add_health_routes
from shared.metrics import REGISTRY_KEY, install_metrics, metrics_middleware
from shared.params import MAX_BODY_BYTES
from shared.security import cors_preflight_middleware, install_security
from shared.web import error_middleware

ENGINE_KEY = web.AppKey("engine", AsyncEngine)


def create_service_app(
    service_name: str,
    *,
    database_url: str,
    jwt_secret: str,
    db_pool_size: int,
    token_keys: TokenKeys | None = None,
    cors_allowed_origins: tuple[str, ...] = (),
) -> web.Application:
    """`token_keys` defaults to HS256 with `jwt_secret`; service tokens must name `service_name` as audience."""
    app = web.Application(
        middlewares=[metrics_middleware, error_middleware, cors_preflight_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[TOKEN_KEYS_KEY] = token_keys or TokenKeys(secret=jwt_secret)
    app[AUDIENCE_KEY] = service_name
    install_security(app, cors_allowed_origins)
    app.cleanup_ctx.append(_engine_context(database_url, db_pool_size))
    add_health_routes(app, service_name, _check_database)
    # A cast, not a check per scrape: create_engine's pool_size makes it a QueuePool (the async adapted one).
    install_metrics(
        app, lambda: cast(QueuePool, app[ENGINE_KEY].sync_engine.pool).checkedout() if ENGINE_KEY in app else 0
    )
    return app


def registry_of(app: web.Application) -> CollectorRegistry:
    return app[REGISTRY_KEY]


def _engine_context(database_url: str, pool_size: int):
    async def context(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(database_url, pool_size=pool_size)
        app[ENGINE_KEY] = engine
        yield
        await engine.dispose()

    return context


async def _check_database(app: web.Application) -> None:
    async with app[ENGINE_KEY].connect() as connection:
        await connection.execute(text("SELECT 1"))


def run_service(app: web.Application, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM, on uvloop where it is installed (it is on Linux and macOS)."""
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = None
    web.run_app(app, host=host, port=port, access_log=None, print=None, shutdown_timeout=5, loop=loop)
