"""GET /health answers the original system's fields beside ours: 200 healthy, 503 unhealthy with `data` still."""

from __future__ import annotations

from datetime import datetime

import pytest
from aiohttp import web

from shared import jsonio
from shared.health import add_health_routes
from shared.web import error_middleware
from tests.conftest import serve


async def _fine(app: web.Application) -> None:
    return None


async def _database_down(app: web.Application) -> None:
    raise ConnectionRefusedError("no database")


def app_with(check) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    add_health_routes(app, "accounts-service", check)
    return app


@pytest.mark.parametrize("path", ["/health", "/ready"])
async def test_healthy_answers_200_with_the_original_fields(path: str) -> None:
    async with serve(app_with(_fine)) as client:
        response = await client.get(path)
        body = jsonio.loads(await response.read())
    assert response.status == 200
    assert body["success"] is True
    data = body["data"]
    assert (data["status"], data["service"], data["database"]["connected"]) == ("healthy", "accounts-service", True)
    assert isinstance(data["uptime"], int) and data["uptime"] >= 0
    assert datetime.fromisoformat(data["timestamp"]).tzinfo is not None
    assert data["database_latency_ms"] >= 0


async def test_unhealthy_answers_503_with_data_and_the_error_envelope() -> None:
    async with serve(app_with(_database_down)) as client:
        response = await client.get("/health")
        body = jsonio.loads(await response.read())
    assert response.status == 503
    assert body["success"] is False
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert body["error"]["details"] == {
        "service": "accounts-service",
        "database": "down",
        "reason": "ConnectionRefusedError",
    }
    data = body["data"]
    assert (data["status"], data["database"]["connected"]) == ("unhealthy", False)
    assert isinstance(data["uptime"], int)
