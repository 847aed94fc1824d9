"""Named bounds on every wait a library would otherwise choose, and how database trouble is answered."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from aiohttp import web
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from harness.local_postgres import LocalPostgres
from shared import database
from shared.hot_sql import raw_connection
from shared.web import error_middleware
from tests.conftest import TEST_KEYS, make_database, serve
from transactions_service import app as transactions_app
from transactions_service.keys import COORDINATOR_KEY
from transactions_service.settings import Settings

SHORT_BOUND_S = 0.5
# How much later than its bound a wait may end here (a loaded test machine), still far below the defaults.
SLACK_S = 2.0


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word: a database host that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.fixture(scope="module")
def own_db_url(postgres: LocalPostgres) -> str:
    """A database of this module's own: its backends are terminated here without touching other tests'."""
    return make_database(postgres, "accounts_service")


async def test_the_pool_replaces_connections_the_server_closed_without_failing_a_request(own_db_url, postgres):
    engine = database.create_engine(own_db_url, pool_size=3, max_overflow=0)
    try:

        async def busy() -> None:  # three connections at once, so the pool holds three
            async with engine.connect() as connection:
                await connection.execute(text("SELECT pg_sleep(0.1)"))

        await asyncio.gather(busy(), busy(), busy())
        killer = await asyncpg.connect(postgres.url("postgres"))
        try:
            killed = await killer.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
                own_db_url.rsplit("/", 1)[1],
            )
        finally:
            await killer.close()
        assert killed == 3
        await asyncio.sleep(0.2)  # the driver sees each socket close

        for _ in range(3):  # every pooled connection is dead; no request may hear about it
            async with engine.connect() as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize("cut_short_by", ["cancellation", "timeout"])
async def test_a_statement_cut_short_never_leaves_its_connection_busy_for_the_next_caller(own_db_url, cut_short_by):
    """A request cancelled mid-statement (its caller hung up, its deadline passed) hands its connection
    back while the statement still runs: the next caller of that one pooled connection must not meet it."""
    engine = database.create_engine(own_db_url, pool_size=1, max_overflow=0)
    try:

        async def slow() -> None:
            async with raw_connection(engine) as connection:
                await connection.fetchval("SELECT pg_sleep(5)")

        if cut_short_by == "cancellation":
            task = asyncio.create_task(slow())
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await slow()

        for _ in range(3):
            assert await _select_one(engine, "raw") == 1
            assert await _select_one(engine, "sqlalchemy") == 1
    finally:
        await engine.dispose()


# How long the proxy below keeps a client's socket open after the server closed its side.
HELD_CLOSE_S = 1.0


@pytest.fixture
async def close_holding_proxy(postgres: LocalPostgres) -> AsyncIterator[int]:
    """A port in front of PostgreSQL that passes every byte both ways, but closes a client's socket only
    HELD_CLOSE_S after the server closed it: the window in which a backend's farewell (FATAL 57P01) has
    reached the driver and its socket's end has not, which a busy service meets now and then."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold_s: float) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        await asyncio.sleep(hold_s)
        writer.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", postgres.port)
        await asyncio.gather(pipe(client_reader, server_writer, 0), pipe(server_reader, client_writer, HELD_CLOSE_S))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _select_one(engine, path: str) -> int:
    if path == "raw":
        async with raw_connection(engine) as connection:
            return await connection.fetchval("SELECT 1")
    async with engine.connect() as connection:
        return (await connection.execute(text("SELECT 1"))).scalar_one()


@pytest.mark.parametrize("path", ["raw", "sqlalchemy"])
async def test_a_connection_the_server_ended_while_idle_is_answered_unavailable_not_as_a_bug(
    own_db_url, postgres, close_holding_proxy, path
):
    database_name = own_db_url.rsplit("/", 1)[1]
    engine = database.create_engine(
        postgres.url(database_name).replace(f":{postgres.port}/", f":{close_holding_proxy}/"), pool_size=1
    )
    try:
        async with raw_connection(engine) as connection:
            backend = await connection.fetchval("SELECT pg_backend_pid()")
        killer = await asyncpg.connect(postgres.url("postgres"))
        try:
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", backend)
        finally:
            await killer.close()
        await asyncio.sleep(HELD_CLOSE_S / 4)  # the farewell has arrived; the socket is still open

        with pytest.raises(Exception) as raised:
            await _select_one(engine, path)
        assert database.database_unavailable(raised.value), repr(raised.value)

        assert await _select_one(engine, path) == 1  # the pool never hands that connection out again
    finally:
        await engine.dispose()


def test_the_bounds_are_named_and_below_the_library_defaults():
    assert database.DEFAULT_CONNECT_TIMEOUT_S < 60  # asyncpg's own default
    assert database.DEFAULT_COMMAND_TIMEOUT_S > database.DEFAULT_STATEMENT_TIMEOUT_MS / 1000


async def test_a_database_that_never_answers_the_connect_fails_within_the_connect_timeout(silent_server):
    engine = database.create_engine(
        f"postgresql://postgres@127.0.0.1:{silent_server}/nothing", connect_timeout_s=SHORT_BOUND_S
    )
    started = time.monotonic()
    try:
        with pytest.raises(Exception) as raised:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert time.monotonic() - started < SHORT_BOUND_S + SLACK_S
    assert database.database_unavailable(raised.value)


async def test_a_statement_that_never_returns_ends_at_the_command_timeout(accounts_db_url):
    engine = database.create_engine(accounts_db_url, command_timeout_s=SHORT_BOUND_S, statement_timeout_ms=60_000)
    started = time.monotonic()
    try:
        with pytest.raises(Exception) as raised:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT pg_sleep(30)"))
    finally:
        await engine.dispose()
    assert time.monotonic() - started < SHORT_BOUND_S + SLACK_S
    assert database.database_unavailable(raised.value)


async def test_http_connections_per_participant_follow_the_database_pool(transactions_db_url):
    app = transactions_app.create_app(
        Settings(
            database_url=transactions_db_url, **TEST_KEYS, accounts_service_url="http://127.0.0.1:9", db_pool_size=7
        )
    )
    async with serve(app):
        clients = app[COORDINATOR_KEY].participants.clients
        assert [client.connections for client in clients.values()] == [7]


def _wrapped(error: Exception) -> sa_exc.DBAPIError:
    """The error as SQLAlchemy's asyncpg dialect hands it to us: a DBAPIError around the driver's."""
    return sa_exc.DBAPIError("SELECT 1", {}, error)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(
            _wrapped(asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")),
            id="closed-mid-operation",
        ),
        pytest.param(_wrapped(asyncpg.CannotConnectNowError("the database system is starting up")), id="starting-up"),
        pytest.param(
            _wrapped(asyncpg.AdminShutdownError("terminating connection due to administrator command")), id="terminated"
        ),
        pytest.param(_wrapped(asyncpg.TooManyConnectionsError("sorry, too many clients already")), id="too-many"),
        pytest.param(ConnectionResetError(104, "Connection reset by peer"), id="reset-while-connecting"),
        pytest.param(sa_exc.TimeoutError("QueuePool limit reached"), id="pool-timeout"),
        pytest.param(TimeoutError(), id="command-timeout"),
    ],
)
async def test_a_database_that_cannot_serve_is_a_503_with_retry_after(error):
    async def failing(_request: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/", failing)
    async with serve(app) as client:
        response = await client.get("/")
        body = await response.json()
    assert response.status == 503, body
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert int(response.headers["Retry-After"]) >= 1


async def test_a_bug_is_still_a_500():
    async def failing(_request: web.Request) -> web.Response:
        raise _wrapped(asyncpg.CheckViolationError("new row violates check constraint"))

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/", failing)
    async with serve(app) as client:
        response = await client.get("/")
    assert response.status == 500


async def test_a_transaction_the_server_rolled_back_to_break_a_deadlock_is_try_again(own_db_url):
    """Two transactions locking two rows in opposite orders: PostgreSQL cancels one (40P01). Nothing of it
    was written, so its answer is a 503 "try again", never a 500."""
    engine = database.create_engine(own_db_url, pool_size=2, max_overflow=0)
    ids = ("00000000-0000-0000-0000-00000000d001", "00000000-0000-0000-0000-00000000d002")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("SET LOCAL deadlock_timeout = '50ms'"))
            for account_id in ids:
                await connection.execute(
                    text("INSERT INTO accounts (account_id, customer_id, balance) VALUES (:a, :a, 1)"),
                    {"a": account_id},
                )
        both_hold_one = asyncio.Barrier(2)

        async def lock_in_order(first: str, second: str) -> None:
            async with engine.begin() as connection:
                await connection.execute(text("SET LOCAL deadlock_timeout = '50ms'"))
                await connection.execute(text("SELECT 1 FROM accounts WHERE account_id = :a FOR UPDATE"), {"a": first})
                await both_hold_one.wait()
                await connection.execute(text("SELECT 1 FROM accounts WHERE account_id = :a FOR UPDATE"), {"a": second})

        outcomes = await asyncio.gather(lock_in_order(*ids), lock_in_order(*reversed(ids)), return_exceptions=True)
    finally:
        await engine.dispose()
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert len(failures) == 1, outcomes
    assert "40P01" in repr(failures[0]) or getattr(failures[0].orig, "sqlstate", None) == "40P01"
    assert database.database_unavailable(failures[0])
