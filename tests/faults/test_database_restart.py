"""PostgreSQL crashes (immediate stop) under load and comes back: 503s that say when to retry, never a 500,
never an answer that lies, and transfers succeeding again within seconds of the database's return.

The system runs on a durable cluster of its own, so crashing it leaves the rest of the suite's databases alone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal

import aiohttp
import pytest
import pytest_asyncio

from harness.local_postgres import LocalPostgres, free_port
from harness.system import LocalSystem
from tests.conftest import token
from tests.e2e.conftest import ALICE, Api, start_system
from tests.faults.conftest import FAST_RECOVERY_ENV, settled_report

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

CLIENTS = 4
OPENING = Decimal("1000")
WARM_S = 1.0
DOWN_S = 2.0
# The promise under test: transfers succeed again within this long of the database accepting connections.
BACK_WITHIN_S = 5.0
AFTER_S = BACK_WITHIN_S + 3.0
REQUEST_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def crash_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    # Durable: a crash must not lose a commit PostgreSQL acknowledged (the suite's own cluster runs with
    # synchronous_commit off, where an immediate stop forgets the last commits, as no production database would).
    cluster = LocalPostgres(tmp_path_factory.mktemp("crash-pg") / "data", free_port(), durable=True)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop("immediate")


@pytest.fixture(scope="module")
def crash_system(crash_cluster: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    running = start_system(crash_cluster, tmp_path_factory.mktemp("crash-logs"), extra_env=FAST_RECOVERY_ENV)
    try:
        yield running
    finally:
        running.stop_all()


@pytest_asyncio.fixture(loop_scope="session")
async def crash_api(crash_system: LocalSystem) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
        yield Api(session, crash_system)


@dataclass(frozen=True)
class Answered:
    sent_at: float
    answered_at: float
    status: int
    code: str | None
    retry_after: str | None
    transaction_id: uuid.UUID | None


async def _transfer(api: Api, source: uuid.UUID, destination: uuid.UUID) -> Answered:
    sent_at = time.monotonic()
    url = api.system.url("transactions_service") + "/transfers"
    async with api.session.post(
        url,
        json={"source_account_id": str(source), "destination_account_id": str(destination), "amount": "1"},
        headers={"Authorization": f"Bearer {token('teller')}"},
    ) as response:
        body = await response.json(content_type=None)
        retry_after = response.headers.get("Retry-After")
    data = body.get("data") or (body.get("error") or {}).get("details") or {}
    transaction_id = data.get("transaction_id") if isinstance(data, dict) else None
    return Answered(
        sent_at,
        time.monotonic(),
        response.status,
        (body.get("error") or {}).get("code"),
        retry_after,
        uuid.UUID(transaction_id) if transaction_id else None,
    )


async def _client(
    api: Api, source: uuid.UUID, destination: uuid.UUID, until: asyncio.Event, answers: list[Answered]
) -> None:
    while not until.is_set():
        source, destination = destination, source  # back and forth: the balances never run out
        try:
            answers.append(await _transfer(api, source, destination))
        except (TimeoutError, aiohttp.ClientError):
            answers.append(Answered(time.monotonic(), time.monotonic(), 0, "no_answer", None, None))
        await asyncio.sleep(0.01)


async def test_postgres_crash_and_restart_under_load(
    crash_api: Api, crash_system: LocalSystem, crash_cluster: LocalPostgres
) -> None:
    pairs = [
        (await crash_api.open_account(ALICE, OPENING), await crash_api.open_account(ALICE, OPENING))
        for _ in range(CLIENTS)
    ]
    accounts = [account for pair in pairs for account in pair]
    answers: list[Answered] = []
    stop = asyncio.Event()
    clients = [
        asyncio.create_task(_client(crash_api, source, destination, stop, answers)) for source, destination in pairs
    ]

    await asyncio.sleep(WARM_S)
    crashed_at = time.monotonic()
    await asyncio.to_thread(crash_cluster.stop, "immediate")
    await asyncio.sleep(DOWN_S)
    await asyncio.to_thread(crash_cluster.start)
    back_at = time.monotonic()
    await asyncio.sleep(AFTER_S)
    stop.set()
    await asyncio.gather(*clients)

    statuses = sorted({answer.status for answer in answers})
    assert all(answer.status != 500 for answer in answers), statuses
    assert all(answer.status in (200, 409, 503, 504) for answer in answers), statuses
    assert all(answer.retry_after for answer in answers if answer.status == 503), "a 503 says when to retry"
    assert all(answer.code == "OUTCOME_UNKNOWN" and answer.transaction_id for answer in answers if answer.status == 504)
    before = [answer for answer in answers if answer.answered_at < crashed_at]
    assert before and all(answer.status == 200 for answer in before)
    first_success_after = min(
        answer.answered_at for answer in answers if answer.sent_at > back_at and answer.status == 200
    )
    assert first_success_after - back_at < BACK_WITHIN_S
    settled_window = [answer for answer in answers if answer.sent_at > back_at + BACK_WITHIN_S]
    assert settled_window and all(answer.status == 200 for answer in settled_window), sorted(
        {answer.status for answer in settled_window}
    )

    outcomes = {
        answer.transaction_id: "committed" if answer.status == 200 else "aborted"
        for answer in answers
        if answer.transaction_id and answer.status in (200, 409)
    }
    report, elapsed = await settled_report(crash_system, accounts, OPENING * len(accounts), outcomes)
    assert report.violations == [], f"after {elapsed:.1f}s: {report.violations}"
    rate_before = sum(1 for answer in before if answer.status == 200) / (crashed_at - before[0].sent_at)
    rate_after = len(settled_window) / (settled_window[-1].answered_at - settled_window[0].sent_at)
    counts = {status: sum(1 for answer in answers if answer.status == status) for status in statuses}
    print(
        f"\nanswers by status {counts}; first 200 {first_success_after - back_at:.2f}s after restart; "
        f"committed/s before the crash {rate_before:.0f}, from {BACK_WITHIN_S:.0f}s after restart {rate_after:.0f}"
    )
