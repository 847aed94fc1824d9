"""An audited action's answer stands when its audit row cannot be written (found by the bank check:
committed transfers answered 503 because the audit write met a restarting database)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from harness.local_postgres import free_port
from shared.audit import audited
from shared.auth import Principal
from shared.callers import PRINCIPAL_KEY
from shared.database import create_engine
from shared.service_app import ENGINE_KEY
from shared.web import error_middleware, ok


@audited("transfer")
async def decided_transfer(request: web.Request) -> web.Response:
    request[PRINCIPAL_KEY] = Principal(role="teller", customer_id=None, subject="teller")
    return ok({"status": "committed"})


async def test_a_decided_action_keeps_its_answer_when_the_audit_write_fails() -> None:
    app = web.Application(middlewares=[error_middleware])
    # A database nobody listens on: the audit write fails as it does while PostgreSQL restarts.
    engine = create_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none", pool_size=1)
    app[ENGINE_KEY] = engine
    app.router.add_post("/transfers", decided_transfer)
    client = TestClient(TestServer(app, port=free_port()))
    await client.start_server()
    try:
        answer = await client.post("/transfers", json={"amount": "1"})
        assert answer.status == 200
        assert (await answer.json())["data"] == {"status": "committed"}
    finally:
        await client.close()
        await engine.dispose()
