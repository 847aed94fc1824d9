"""The events trigger notifies only while a coordinator process watches (migration 0005), and the watch itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.local_postgres import LocalPostgres
from shared.database import create_engine
from tests.conftest import make_database
from transactions_service.push.listener import CHANNEL
from transactions_service.push.notices import parse_notice
from transactions_service.push.watch import PushWatch

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOTICE_WAIT_S = 2.0
SILENCE_S = 0.3  # how long "no notice came" is waited for; notices arrive at commit, within milliseconds
PAYLOAD_MAX_BYTES = 8000  # PostgreSQL's own limit


@pytest.fixture(scope="module")
def push_db_url(postgres: LocalPostgres) -> str:
    """A database of this module's own: its watchers are this module's only."""
    return make_database(postgres, "transactions_service")


@pytest_asyncio.fixture(loop_scope="session")
async def connection(push_db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(push_db_url)
    await connection.execute("DELETE FROM push_watchers")
    try:
        yield connection
    finally:
        await connection.close()


@pytest_asyncio.fixture(loop_scope="session")
async def engine(push_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(push_db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def notices(push_db_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    """Every payload on the events channel, as a second coordinator process would hear it."""
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(push_db_url)
    await listener.add_listener(CHANNEL, lambda _c, _pid, _channel, payload: heard.put_nowait(payload))
    try:
        yield heard
    finally:
        await listener.close()


async def _log_transfers(connection: asyncpg.Connection, count: int, details: str = "{}") -> list[uuid.UUID]:
    """`count` transfers, then two events of each in one statement (one notice per transfer, if watched)."""
    ids = [uuid.uuid4() for _ in range(count)]
    for transaction_id in ids:
        await connection.execute(
            """INSERT INTO transactions (transaction_id, source_account_id, destination_account_id, amount, status,
                                         request_fingerprint, requested_by)
               VALUES ($1, $2, $3, $4, 'preparing', 'test', 'test')""",
            transaction_id,
            uuid.uuid4(),
            uuid.uuid4(),
            Decimal("12.3400"),
        )
    await connection.execute(
        """INSERT INTO transaction_events (transaction_id, event_type, details, occurred_at)
           SELECT id, kind, $2::jsonb, now()
           FROM unnest($1::uuid[]) AS id CROSS JOIN unnest(ARRAY['accepted', 'prepare_sent']) WITH ORDINALITY AS k(kind, n)
           ORDER BY n""",
        ids,
        details,
    )
    return ids


async def _watch_for(connection: asyncpg.Connection, seconds: float) -> None:
    await connection.execute(
        "INSERT INTO push_watchers VALUES ($1, now() + make_interval(secs => $2))", uuid.uuid4().hex, seconds
    )


async def _silent(notices: asyncio.Queue[str]) -> bool:
    await asyncio.sleep(SILENCE_S)
    return notices.empty()


async def test_no_notice_is_built_while_nobody_watches(connection, notices):
    await _log_transfers(connection, 2)
    assert await _silent(notices)


async def test_a_watch_that_ran_out_hears_nothing(connection, notices):
    await _watch_for(connection, -1)
    await _log_transfers(connection, 2)
    assert await _silent(notices)


async def test_while_watched_each_transfer_of_a_statement_is_one_notice_with_its_events(connection, notices):
    await _watch_for(connection, 60)
    ids = await _log_transfers(connection, 3, '{"accounts": ["a"]}')

    heard = [parse_notice(await asyncio.wait_for(notices.get(), NOTICE_WAIT_S)) for _ in ids]
    assert sorted(notice.transaction_id for notice in heard) == sorted(ids)
    for notice in heard:
        assert [event["event_type"] for event in notice.events] == ["accepted", "prepare_sent"]
        assert all(event["details"] == {"accounts": ["a"]} for event in notice.events)
        assert notice.amount == Decimal("12.3400") and notice.status == "pending" and not notice.truncated
    assert await _silent(notices)


async def test_an_oversized_notice_is_sent_without_details_and_says_so(connection, notices):
    await _watch_for(connection, 60)
    [transaction_id] = await _log_transfers(connection, 1, '{"note": "%s"}' % ("x" * PAYLOAD_MAX_BYTES))

    payload = await asyncio.wait_for(notices.get(), NOTICE_WAIT_S)
    notice = parse_notice(payload)
    assert len(payload.encode()) < PAYLOAD_MAX_BYTES
    assert notice.transaction_id == transaction_id and notice.truncated
    assert [event["event_type"] for event in notice.events] == ["accepted", "prepare_sent"]
    assert all(event["details"] == {} for event in notice.events)


async def _watched_until(connection: asyncpg.Connection, watch: PushWatch):
    return await connection.fetchval("SELECT watched_until FROM push_watchers WHERE watcher_id = $1", watch.watcher_id)


async def test_a_watch_is_one_row_written_when_needed_and_deleted_on_release(engine, connection):
    watch = PushWatch(engine, lease_s=30, renew_s=10)
    await watch.ensure()
    first = await _watched_until(connection, watch)
    await watch.ensure()  # live for longer than renew_s: nothing to write

    assert watch.live and first is not None and await _watched_until(connection, watch) == first
    await watch.release()
    assert not watch.live and await _watched_until(connection, watch) is None


async def test_tending_renews_while_watched_resyncs_after_a_lapse_and_releases_when_unwatched(engine, connection):
    watch = PushWatch(engine, lease_s=0.5, renew_s=0.1)
    watched, resyncs = [True], []
    await watch.ensure()
    tending = asyncio.create_task(watch.tend(lambda: watched[0], lambda: resyncs.append(1)))
    try:
        first = await _watched_until(connection, watch)
        await asyncio.sleep(watch.lease_s)
        assert await _watched_until(connection, watch) > first and resyncs == []

        watch._live_until = 0.0  # as if the database had been down past the lease
        await asyncio.sleep(watch.renew_s * 3)
        assert resyncs == [1] and watch.live

        watched[0] = False
        await asyncio.sleep(watch.renew_s * 3)
        assert await _watched_until(connection, watch) is None
    finally:
        tending.cancel()
        await asyncio.gather(tending, return_exceptions=True)
