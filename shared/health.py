"""GET /health (the database checked, 503 when it is down), /health/ping (the process alive) and /ready."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

from aiohttp import web

from shared.errors import ServiceUnavailableError
from shared.web import json_response, ok

HealthCheck = Callable[[web.Application], Awaitable[None]]
# Subscripted, not AppKey(name, type): a Callable alias is no class to pass as the type argument.
HEALTH_CHECK_KEY = web.AppKey[HealthCheck]("health_check")
SERVICE_NAME_KEY = web.AppKey("service_name", str)
STARTED_KEY = web.AppKey("started_monotonic_s", float)


def add_health_routes(app: web.Application, service_name: str, check: HealthCheck) -> None:
    """GET /health (database checked, 503 when down), /health/ping (process alive), /ready."""
    app[SERVICE_NAME_KEY] = service_name
    app[HEALTH_CHECK_KEY] = check
    app[STARTED_KEY] = time.monotonic()
    app.router.add_get("/health", _health)
    app.router.add_get("/health/ping", _ping)
    app.router.add_get("/ready", _health)


async def _ping(request: web.Request) -> web.Response:
    return ok({"status": "ok", "service": request.app[SERVICE_NAME_KEY]}, message="pong")  # the original's word


async def _health(request: web.Request) -> web.Response:
    """The original system's fields (status, service, timestamp, database.connected, uptime in ms) and ours.

    Unhealthy is a 503 whose body is our error envelope and, beside it, the same `data` saying why,
    because the original's clients read `data.status` and `data.database.connected` on either answer."""
    app = request.app
    probe = {
        "service": app[SERVICE_NAME_KEY],
        "timestamp": datetime.now(UTC),
        "uptime": int((time.monotonic() - app[STARTED_KEY]) * 1000),
    }
    started = time.perf_counter()
    try:
        await app[HEALTH_CHECK_KEY](app)
    except Exception as error:  # any failure of the check means "not healthy", with its reason
        reason = type(error).__name__
        unavailable = ServiceUnavailableError(
            "database unavailable", details={"service": app[SERVICE_NAME_KEY], "database": "down", "reason": reason}
        )
        data = {"status": "unhealthy", **probe, "database": {"connected": False, "error": reason}}
        return json_response({**unavailable.to_body(), "data": data}, unavailable.status)
    latency_ms = Decimal(f"{(time.perf_counter() - started) * 1000:.1f}")
    return ok(
        {
            "status": "healthy",
            **probe,
            "database": {"connected": True, "latency_ms": latency_ms},
            "database_latency_ms": latency_ms,
        }
    )
