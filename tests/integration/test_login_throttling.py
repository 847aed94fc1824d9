"""Logins are throttled per username and per client address: 429 with Retry-After, same answer for known
and unknown users, a successful login starts the user's count again, an attempt is counted before its
password is checked (a parallel burst gets only the allowed number through), replicas share the counts
(they live in the customers database), and X-Forwarded-For is believed only from a trusted proxy."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from sqlalchemy import text

from customer_service.app import create_app
from customer_service.domain import Login, Role
from customer_service.passwords import Passwords
from customer_service.service import create_login
from customer_service.settings import Settings
from customer_service.throttle import client_address, parse_trusted_proxies
from shared.database import create_engine
from tests.conftest import TEST_KEYS, serve

FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 8192}
FAILURES_MAX = 3
ADDRESS_FAILURES_MAX = 8
WINDOW_S = 60.0
PASSWORD = "correct horse battery"


@pytest_asyncio.fixture(loop_scope="session")
async def client(customers_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TestClient]:
    """A fresh app per test, and no counted attempts: each test starts from zero."""
    await forget_attempts(customers_db_url)
    settings = Settings(
        database_url=customers_db_url,
        **TEST_KEYS,
        log_dir=str(tmp_path_factory.mktemp("throttle-logs")),
        login_failures_max=FAILURES_MAX,
        login_address_failures_max=ADDRESS_FAILURES_MAX,
        login_window_s=WINDOW_S,
        **FAST_ARGON2,
    )
    async with serve(create_app(settings)) as test_client:
        yield test_client


async def forget_attempts(customers_db_url: str) -> None:
    engine = create_engine(customers_db_url, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM login_attempts"))
    finally:
        await engine.dispose()


def throttled_app(customers_db_url: str, log_dir: str, **overrides: Any) -> Any:
    settings = Settings(
        database_url=customers_db_url,
        **TEST_KEYS,
        log_dir=log_dir,
        login_failures_max=FAILURES_MAX,
        login_address_failures_max=ADDRESS_FAILURES_MAX,
        login_window_s=WINDOW_S,
        **FAST_ARGON2,
        **overrides,
    )
    return create_app(settings)


async def new_login(customers_db_url: str) -> str:
    username = f"throttle-{uuid.uuid4().hex[:12]}"
    engine = create_engine(customers_db_url, pool_size=1)
    try:
        await create_login(
            engine,
            Passwords(time_cost=1, memory_kib=8192),
            Login(username=username, password=PASSWORD, role=Role.TELLER, customer_id=None),
        )
    finally:
        await engine.dispose()
    return username


async def login(client: TestClient, username: str, password: str) -> tuple[int, dict[str, Any], Any]:
    response = await client.post("/auth/login", json={"username": username, "password": password})
    return response.status, await response.json(), response.headers


async def fail(client: TestClient, username: str, times: int) -> None:
    for _ in range(times):
        status, _, _ = await login(client, username, "wrong password!")
        assert status == 401


@pytest.mark.asyncio(loop_scope="session")
async def test_too_many_failures_for_a_user_answer_429_with_retry_after(client, customers_db_url) -> None:
    username = await new_login(customers_db_url)
    await fail(client, username, FAILURES_MAX)
    # Even the right password waits: the guesser must not learn it was right.
    status, body, headers = await login(client, username, PASSWORD)
    assert status == 429, body
    assert body["error"]["code"] == "TOO_MANY_REQUESTS"
    assert 1 <= int(headers["Retry-After"]) <= WINDOW_S
    assert body["error"]["details"]["retry_after_s"] == int(headers["Retry-After"])


@pytest.mark.asyncio(loop_scope="session")
async def test_unknown_and_known_users_are_throttled_alike(client, customers_db_url) -> None:
    known = await new_login(customers_db_url)
    unknown = f"nobody-{uuid.uuid4().hex[:12]}"
    await fail(client, known, FAILURES_MAX)
    await fail(client, unknown, FAILURES_MAX)
    known_answer = await login(client, known, "wrong password!")
    unknown_answer = await login(client, unknown, "wrong password!")
    assert known_answer[0] == unknown_answer[0] == 429
    assert known_answer[1] == unknown_answer[1]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_successful_login_resets_the_users_count(client, customers_db_url) -> None:
    username = await new_login(customers_db_url)
    await fail(client, username, FAILURES_MAX - 1)
    assert (await login(client, username, PASSWORD))[0] == 200
    await fail(client, username, FAILURES_MAX - 1)  # would be over the limit without the reset
    assert (await login(client, username, PASSWORD))[0] == 200


@pytest.mark.asyncio(loop_scope="session")
async def test_throttling_one_user_leaves_another_alone(client, customers_db_url) -> None:
    victim, other = await new_login(customers_db_url), await new_login(customers_db_url)
    await fail(client, victim, FAILURES_MAX)
    assert (await login(client, victim, PASSWORD))[0] == 429
    assert (await login(client, other, PASSWORD))[0] == 200


@pytest.mark.asyncio(loop_scope="session")
async def test_failures_across_many_usernames_throttle_the_address(client, customers_db_url) -> None:
    for _ in range(ADDRESS_FAILURES_MAX):
        await fail(client, f"spray-{uuid.uuid4().hex[:12]}", 1)
    status, body, headers = await login(client, await new_login(customers_db_url), PASSWORD)
    assert status == 429, body
    assert int(headers["Retry-After"]) >= 1


BURST = 24


@pytest.mark.asyncio(loop_scope="session")
async def test_a_parallel_burst_gets_at_most_the_allowed_number_of_password_checks(client, customers_db_url) -> None:
    """Found: the check ran before the failure was counted, so 500 parallel guesses were all checked."""
    username = await new_login(customers_db_url)
    answers = await asyncio.gather(*(login(client, username, f"guess number {index}") for index in range(BURST)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses.count(401) == FAILURES_MAX, statuses  # checked (and wrong)
    assert statuses.count(429) == BURST - FAILURES_MAX, statuses


@pytest.mark.asyncio(loop_scope="session")
async def test_two_replicas_share_the_counts(client, customers_db_url, tmp_path) -> None:
    """Found: counts were per process, so two replicas allowed twice the guesses."""
    username = await new_login(customers_db_url)
    async with serve(throttled_app(customers_db_url, str(tmp_path))) as other_replica:
        for index in range(FAILURES_MAX):
            replica = client if index % 2 else other_replica
            assert (await login(replica, username, "wrong password!"))[0] == 401
        assert (await login(client, username, PASSWORD))[0] == 429
        assert (await login(other_replica, username, PASSWORD))[0] == 429


@pytest.mark.asyncio(loop_scope="session")
async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(client, customers_db_url, tmp_path) -> None:
    """Found: behind the Ingress every client shares its address, so 50 failures locked every login."""
    spoofed = {"X-Forwarded-For": "203.0.113.7"}
    for index in range(ADDRESS_FAILURES_MAX):  # an untrusted peer cannot pick its address by a header
        await client.post(
            "/auth/login",
            json={"username": f"spray-{index}-{uuid.uuid4().hex[:6]}", "password": "wrong password!"},
            headers={"X-Forwarded-For": f"198.51.100.{index}"},
        )
    assert (
        await client.post(
            "/auth/login", json={"username": await new_login(customers_db_url), "password": PASSWORD}, headers=spoofed
        )
    ).status == 429
    await forget_attempts(customers_db_url)
    async with serve(
        throttled_app(customers_db_url, str(tmp_path), trusted_proxies=parse_trusted_proxies("127.0.0.1/32, ::1"))
    ) as behind_proxy:
        for _attempt in range(ADDRESS_FAILURES_MAX):
            await behind_proxy.post(
                "/auth/login",
                json={"username": f"spray-{uuid.uuid4().hex[:8]}", "password": "wrong password!"},
                headers=spoofed,
            )
        answer = await behind_proxy.post(
            "/auth/login",
            json={"username": await new_login(customers_db_url), "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.8"},
        )
        assert answer.status == 200  # another client behind the same proxy is not locked out


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("10.0.0.5", "203.0.113.7", "203.0.113.7"),  # from the proxy: its client
        ("10.0.0.5", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the nearest untrusted hop, not a forged one
        ("10.0.0.5", "203.0.113.7, 10.0.0.9", "203.0.113.7"),  # through two trusted proxies
        ("192.0.2.1", "203.0.113.7", "192.0.2.1"),  # not a proxy: the header is ignored
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "not-an-address", "10.0.0.5"),
        ("10.0.0.5", "10.0.0.6, 10.0.0.7", "10.0.0.6"),  # all trusted: the farthest known
        (None, "203.0.113.7", "unknown"),
    ],
)
def test_client_address(peer, forwarded, expected) -> None:
    assert client_address(peer, forwarded, parse_trusted_proxies("10.0.0.0/8")) == expected
    assert client_address(peer, forwarded, ()) == (peer or "unknown")
