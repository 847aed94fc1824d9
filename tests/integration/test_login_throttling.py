"""Failed logins are throttled per username and per client address: 429 with Retry-After, same answer for
known and unknown users, and a successful login starts the user's count again."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from customer_service.app import create_app
from customer_service.domain import Login, Role
from customer_service.passwords import Passwords
from customer_service.service import create_login
from customer_service.settings import Settings
from customer_service.throttle import FailureWindow, LoginThrottle
from shared.database import create_engine
from shared.errors import TooManyRequestsError
from tests.conftest import TEST_JWT_SECRET, TEST_KEYS, serve

FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 8192}
FAILURES_MAX = 3
ADDRESS_FAILURES_MAX = 8
WINDOW_S = 60.0
PASSWORD = "correct horse battery"


@pytest_asyncio.fixture(loop_scope="session")
async def client(customers_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TestClient]:
    """A fresh app per test: the throttle lives in the process, so each test starts from zero."""
    settings = Settings(database_url=customers_db_url, **TEST_KEYS,
                        log_dir=str(tmp_path_factory.mktemp("throttle-logs")), login_failures_max=FAILURES_MAX,
                        login_address_failures_max=ADDRESS_FAILURES_MAX, login_window_s=WINDOW_S, **FAST_ARGON2)
    async with serve(create_app(settings)) as test_client:
        yield test_client


async def new_login(customers_db_url: str) -> str:
    username = f"throttle-{uuid.uuid4().hex[:12]}"
    engine = create_engine(customers_db_url, pool_size=1)
    try:
        await create_login(engine, Passwords(time_cost=1, memory_kib=8192),
                           Login(username=username, password=PASSWORD, role=Role.TELLER, customer_id=None))
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


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_the_window_slides_and_forgets_old_failures() -> None:
    clock = FakeClock()
    window = FailureWindow(failures_max=2, window_s=10, clock=clock)
    window.record_failure("alice")
    clock.now_s += 4
    window.record_failure("alice")
    assert window.retry_after_s("alice") == pytest.approx(6)
    clock.now_s += 6
    assert window.retry_after_s("alice") == 0


def test_tracked_keys_stay_bounded() -> None:
    clock = FakeClock()
    window = FailureWindow(failures_max=1, window_s=10, clock=clock, keys_max=100)
    for index in range(1000):
        window.record_failure(f"user-{index}")
        assert len(window._failures) <= 100


def test_the_throttle_refuses_with_a_retry_after_header() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(failures_max=1, address_failures_max=100, window_s=30, clock=clock)
    throttle.failed("Alice", "10.0.0.1")
    with pytest.raises(TooManyRequestsError) as refused:
        throttle.check("alice", "10.0.0.2")  # usernames are compared case-insensitively
    assert refused.value.headers == {"Retry-After": "30"}
    clock.now_s += 30
    throttle.check("alice", "10.0.0.2")
