"""The push channel (GET /ws) without a browser: who may listen, what each hears, every bound, and replicas.

The services run as real processes (the suite's `system`); a test that needs tighter bounds or a
pluggable hook runs one more coordinator in this process, on the same transactions database: it is a
replica like any other, and hears through LISTEN/NOTIFY what the real process decides.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket as socket_module
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
import pytest

from harness.local_postgres import free_port
from harness.system import LocalSystem
from shared import jsonio
from shared.auth import issue_token
from tests.conftest import TEST_JWT_SECRET, TEST_KEYS, serve, token
from tests.e2e.conftest import ALICE, ALICE_MAIN, BOB, BOB_MAIN, Api
from transactions_service.app import create_app
from transactions_service.push.channel import TOKEN_REVOKED_KEY
from transactions_service.push.settings import PushSettings
from transactions_service.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")
CAROL = uuid.UUID("550e8400-e29b-41d4-a716-446655440003")
MESSAGE_TIMEOUT_S = 10.0
QUIET_S = 0.5  # how long "hears nothing" listens


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/ws"


@asynccontextmanager
async def socket(
    url: str, auth: str | None = None, *, how: str = "header"
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A socket to `url`, authenticated `how`: the Authorization header, a subprotocol, or the first message."""
    headers = {"Authorization": f"Bearer {auth}"} if auth and how == "header" else {}
    protocols = ("banking.v1", f"bearer.{auth}") if auth and how == "protocol" else ("banking.v1",)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, headers=headers, protocols=protocols, heartbeat=None) as ws:
            if auth and how == "message":
                await ws.send_str(jsonio.dumps({"type": "auth", "token": auth}))
            yield ws


async def next_message(
    ws: aiohttp.ClientWebSocketResponse,
    wanted: Callable[[dict[str, Any]], bool] = lambda _: True,
    timeout_s: float = MESSAGE_TIMEOUT_S,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        message = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        assert message.type == aiohttp.WSMsgType.TEXT, (message.type, message.data, message.extra)
        body = jsonio.loads(message.data)
        if wanted(body):
            return body


async def closed_with(ws: aiohttp.ClientWebSocketResponse, timeout_s: float = MESSAGE_TIMEOUT_S) -> tuple[int, str]:
    """The close code and reason, skipping whatever was queued before the close frame."""
    deadline = time.monotonic() + timeout_s
    while True:
        message = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return ws.close_code, str(message.extra or "")


def about(transaction_id: str, kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda body: body["type"] == kind and str(body["transaction_id"]) == transaction_id


def replica_settings(system: LocalSystem, database_url: str | None = None, **push: Any) -> Settings:
    return Settings(
        database_url=database_url or system.database_url("transactions_service"),
        **TEST_KEYS,
        accounts_service_url=system.url("accounts_service"),
        push=PushSettings(**push),
    )


@asynccontextmanager
async def replica(
    system: LocalSystem, revoked: Callable[..., Any] | None = None, database_url: str | None = None, **push: Any
) -> AsyncIterator[str]:
    """One more coordinator, in this process, with its own push bounds (and database); its ws:// URL."""
    app = create_app(replica_settings(system, database_url, **push))
    if revoked is not None:
        app[TOKEN_REVOKED_KEY] = revoked
    async with serve(app) as client:
        yield ws_url(str(client.make_url("")).rstrip("/"))


async def welcomed(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    welcome = await next_message(ws)
    assert welcome["type"] == "welcome", welcome
    return welcome


# ----- authentication -----


@pytest.mark.parametrize("how", ["header", "protocol", "message"])
async def test_each_way_to_present_the_token_opens_the_socket(system: LocalSystem, how: str) -> None:
    async with socket(ws_url(system.url("transactions_service")), token("customer", BOB), how=how) as ws:
        welcome = await welcomed(ws)
        assert ws.protocol == "banking.v1", "the token is never echoed as the chosen subprotocol"
    assert welcome["role"] == "customer" and str(welcome["customer_id"]) == str(BOB)
    assert str(BOB_MAIN) in welcome["accounts"]


async def test_a_first_message_that_is_not_auth_closes_4001(system: LocalSystem) -> None:
    async with socket(ws_url(system.url("transactions_service"))) as ws:
        await ws.send_str('{"type": "hello"}')
        assert (await closed_with(ws))[0] == 4001


async def test_no_authentication_in_time_closes_4001(system: LocalSystem) -> None:
    async with replica(system, auth_timeout_s=0.3) as url, socket(url) as ws:
        started = time.monotonic()
        code, reason = await closed_with(ws)
    assert code == 4001 and "authenticate" in reason
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("bad", ["expired", "bad_signature", "service"])
async def test_a_bad_token_closes_4401_or_4403(system: LocalSystem, bad: str) -> None:
    now = datetime.now(UTC)
    tokens = {
        "expired": issue_token(TEST_JWT_SECRET, role="teller", ttl_s=60, now=now - timedelta(hours=2))[0],
        "bad_signature": token("teller", secret="another-secret-0123456789-abcdefghijklmnopq"),
        "service": token("service"),
    }
    async with socket(ws_url(system.url("transactions_service")), tokens[bad], how="message") as ws:
        code, _ = await closed_with(ws)
    assert code == (4403 if bad == "service" else 4401)


async def test_the_socket_closes_4401_when_its_token_expires(system: LocalSystem) -> None:
    short_lived, expires_at = issue_token(TEST_JWT_SECRET, role="teller", ttl_s=2)
    async with socket(ws_url(system.url("transactions_service")), short_lived) as ws:
        await welcomed(ws)
        code, reason = await closed_with(ws, timeout_s=6)
    assert (code, reason) == (4401, "token expired")
    assert abs(time.time() - expires_at.timestamp()) < 1.5, "closed at the token's exp, not long after"


async def test_a_revoked_token_is_refused_and_an_open_socket_closes_4401(system: LocalSystem) -> None:
    revoked_tokens: set[str] = set()

    async def is_revoked(token_text: str, principal: Any) -> bool:
        return token_text in revoked_tokens

    teller = token("teller")
    async with replica(system, revoked=is_revoked, revocation_check_s=0.2) as url:
        async with socket(url, teller) as ws:
            await welcomed(ws)
            revoked_tokens.add(teller)
            assert await closed_with(ws, timeout_s=3) == (4401, "token revoked")
        async with socket(url, teller) as ws:
            assert (await closed_with(ws))[0] == 4401


# ----- what each listener hears -----


async def test_a_customer_hears_their_transfer_decided_and_others_hear_nothing(system: LocalSystem, api: Api) -> None:
    url = ws_url(system.url("transactions_service"))
    async with socket(url, token("customer", BOB)) as bob, socket(url, token("customer", CAROL)) as carol:
        await welcomed(bob)
        await welcomed(carol)
        answer = await api.transfer(ALICE_MAIN, BOB_MAIN, "25", auth=token("customer", ALICE))
        assert answer.status == 200, answer.body
        transaction_id = str(answer.data["transaction_id"])
        notice = await next_message(bob, about(transaction_id, "transfer"))
        with pytest.raises(asyncio.TimeoutError):
            await carol.receive(timeout=QUIET_S)
    assert notice["direction"] == "credit" and str(notice["account_id"]) == str(BOB_MAIN)
    assert notice["amount"] == Decimal("25") and notice["status"] == "committed"
    assert str(notice["counterparty_account_id"]) == str(ALICE_MAIN)


async def test_staff_hear_every_protocol_step_in_order(system: LocalSystem, api: Api) -> None:
    async with socket(ws_url(system.url("transactions_service")), token("teller"), how="protocol") as ws:
        await welcomed(ws)
        answer = await api.transfer(ALICE_MAIN, BOB_MAIN, "1.2345")
        assert answer.status == 200, answer.body
        transaction_id = str(answer.data["transaction_id"])
        heard: list[str] = []
        while "completed" not in heard:
            message = await next_message(ws, about(transaction_id, "protocol"))
            heard += [event["event_type"] for event in message["events"]]
            assert message["amount"] == Decimal("1.2345")
    assert heard == ["accepted", "prepare_sent", "vote", "decision", "decision_sent", "acknowledged", "completed"]


async def test_an_aborted_transfer_is_pushed_with_its_reason(system: LocalSystem, api: Api) -> None:
    async with socket(ws_url(system.url("transactions_service")), token("customer", ALICE)) as ws:
        await welcomed(ws)
        answer = await api.transfer(ALICE_MAIN, BOB_MAIN, "99999999", auth=token("customer", ALICE))
        assert answer.status == 409, answer.body
        notice = await next_message(ws, about(str(answer.body["error"]["details"]["transaction_id"]), "transfer"))
    assert (notice["status"], notice["reason"], notice["direction"]) == ("aborted", "insufficient_funds", "debit")


# ----- bounds -----


async def test_too_many_connections_for_one_user_closes_4029(system: LocalSystem) -> None:
    teller = token("teller")
    async with replica(system, connections_per_user_max=2) as url:
        async with socket(url, teller) as first, socket(url, teller) as second:
            await welcomed(first)
            await welcomed(second)
            async with socket(url, teller) as third:
                code, reason = await closed_with(third)
            async with socket(url, token("admin")) as other_user:
                await welcomed(other_user)
    assert code == 4029 and "at most 2" in reason


async def test_a_socket_is_refused_1013_while_its_watch_cannot_be_written(system: LocalSystem) -> None:
    """The watch row is what makes the trigger send notices: a socket welcomed without it would hear
    nothing, so with the coordinator's database unreachable the socket is told to try again later."""
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/transactions"
    async with replica(system, database_url=unreachable) as url:
        async with socket(url, token("teller")) as ws:
            code, reason = await closed_with(ws, timeout_s=10)
    assert code == 1013 and "database unavailable" in reason


async def test_a_slow_consumer_is_closed_4008(system: LocalSystem) -> None:
    """A client that stops reading (a raw socket with a small receive buffer, since aiohttp's client reads ahead
    without bound); big notices, straight onto the channel, pile up; the server lets it go with 4008."""
    payload = jsonio.dumps(
        {
            "transaction_id": str(uuid.uuid4()),
            "status": "preparing",
            "reason": None,
            "source_account_id": None,
            "destination_account_id": None,
            "amount": None,
            "events": [{"event_type": "accepted", "details": {"padding": "x" * 7000}}],
        }
    )
    async with replica(system, send_queue_max=4, send_timeout_s=0.5, close_timeout_s=20) as url:
        reader, writer = await raw_socket(url, token("teller"))
        connection = await asyncpg.connect(system.database_url("transactions_service"))
        try:
            for _ in range(3000):  # ~20 MB, more than the socket buffers hold
                await connection.execute("SELECT pg_notify('transaction_events', $1)", payload)
        finally:
            await connection.close()
        try:
            code, reason = await asyncio.wait_for(close_frame(reader), 30)
        finally:
            writer.close()
    assert code == 4008 and reason.startswith("slow consumer"), (code, reason)


async def raw_socket(url: str, auth: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket handshake by hand on a socket with a small receive buffer, then no reading at all."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    raw = socket_module.socket()
    raw.setsockopt(socket_module.SOL_SOCKET, socket_module.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=raw, limit=2**24)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {auth}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
    transport = writer.transport
    transport.pause_reading()  # from here on the client reads nothing until close_frame
    return reader, writer


async def close_frame(reader: asyncio.StreamReader) -> tuple[int, str]:
    """Read server frames (never masked) until the close frame; its code and reason."""
    reader._transport.resume_reading()  # type: ignore[attr-defined]
    while True:
        first, second = await reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        data = await reader.readexactly(length)
        if first & 0x0F == 0x8:
            return int.from_bytes(data[:2], "big"), data[2:].decode()


# ----- replicas -----


async def test_a_transfer_decided_by_one_coordinator_process_is_pushed_by_another(
    system: LocalSystem, api: Api
) -> None:
    port = free_port()
    environ = system.service_env("transactions_service", {"PORT": str(port)})
    second = subprocess.Popen(
        [sys.executable, "-m", "transactions_service"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}")
        async with socket(f"ws://127.0.0.1:{port}/ws", token("customer", BOB)) as ws:
            await welcomed(ws)
            answer = await api.transfer(ALICE_MAIN, BOB_MAIN, "3", auth=token("customer", ALICE))  # the first process
            assert answer.status == 200, answer.body
            started = time.monotonic()
            notice = await next_message(ws, about(str(answer.data["transaction_id"]), "transfer"))
            latency_s = time.monotonic() - started
    finally:
        second.terminate()
        second.wait(timeout=10)
    assert notice["status"] == "committed" and notice["direction"] == "credit"
    print(f"pushed by the other coordinator {latency_s * 1000:.1f} ms after the transfer's answer")


async def wait_ready(base_url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(base_url + "/health/ping") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{base_url} not ready after {timeout_s} s")


async def test_the_interactive_shell_hears_a_transfer_through_the_push_channel(system: LocalSystem, api: Api) -> None:
    """cli/shell/push.py, as the shell runs it: live once welcomed, one notice per transfer, polling stands by."""
    from cli.shell.push import PushListener

    heard: list[str] = []
    statuses: dict[str, str] = {}

    def seen(transaction_id: str, status: str) -> bool:
        known = statuses.get(transaction_id) == status
        statuses[transaction_id] = status
        return known

    listener = PushListener(
        lambda: (ws_url(system.url("transactions_service")), token("customer", BOB)), heard.append, seen
    )
    listener.start()
    try:
        deadline = time.monotonic() + MESSAGE_TIMEOUT_S
        while not listener.live.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert listener.live.is_set(), "the push channel is live, so the poller stands by"
        answer = await api.transfer(ALICE_MAIN, BOB_MAIN, "2.5", auth=token("customer", ALICE))
        assert answer.status == 200, answer.body
        while not heard and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        listener.stop()
    assert len(heard) == 1 and "received" in heard[0] and "2.5" in heard[0], heard
    assert statuses[str(answer.data["transaction_id"])] == "committed"
