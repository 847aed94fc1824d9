"""GET /health (the database checked, 503 when it is down), /health/ping (the process alive) and /ready."""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

from aiohttp import web

from shared.errors import ServiceUnavailableError
from shared.web import ok

HealthCheck = Callable[[web.Application], Awaitable[None]]
HEALTH_CHECK_KEY = web.AppKey("health_check", object)
SERVICE_NAME_KEY = web.AppKey("service_name", str)


def add_health_routes(app: web.Application, service_name: str, check: HealthCheck) -> None:
    """GET /health (database checked, 503 when down), /health/ping (process alive), /ready."""
    app[SERVICE_NAME_KEY] = service_name
    app[HEALTH_CHECK_KEY] = check
    app.router.add_get("/health", _health)
    app.router.add_get("/health/ping", _ping)
    app.router.add_get("/ready", _health)


async def _ping(request: web.Request) -> web.Response:
    return ok({"status": "ok", "service": request.app[SERVICE_NAME_KEY]})


async def _health(request: web.Request) -> web.Response:
    started = time.perf_counter()
    try:
        await request.app[HEALTH_CHECK_KEY](request.app)
    except Exception as error:  # any failure of the check means "not healthy", with its reason
        raise ServiceUnavailableError("database unavailable", details={
            "service": request.app[SERVICE_NAME_KEY], "database": "down", "reason": type(error).__name__,
        }) from None
    latency_ms = Decimal(f"{(time.perf_counter() - started) * 1000:.1f}")
    return ok({"status": "healthy", "service": request.app[SERVICE_NAME_KEY], "database": "up",
               "database_latency_ms": latency_ms})
