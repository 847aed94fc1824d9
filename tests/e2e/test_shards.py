"""Accounts on two real accounts databases (ACCOUNTS_SHARD_URLS): each account lives on its shard only.

The coordinator routes an account to shard `account_id mod 2` (transactions_service/participants.py). A
transfer across the shards is one two-phase commit with two participants, each with its own database:
all or nothing on both, and each leg in the ledger of the shard that holds its account.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import pytest_asyncio

from accounts_service import service
from harness.local_postgres import LocalPostgres, free_port
from harness.system import SERVICES, LocalSystem
from shared.database import create_engine
from tests.conftest import TEST_COORDINATOR_SECRET, TEST_JWT_SECRET, TEST_SERVICE_SECRET
from tests.e2e.conftest import ALICE, Api

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

SHARDS = ("accounts_service", "accounts_service@shard1")  # shard 0 is the system's own accounts service
OPENING = Decimal("1000")
_ACCOUNT = "SELECT balance, transaction_lock FROM accounts WHERE account_id = $1"
_LEGS = "SELECT account_id, state, change FROM participant_log WHERE transaction_id = $1 ORDER BY account_id"


def _start_sharded(postgres: LocalPostgres, log_dir: Path) -> tuple[LocalSystem, list[str]]:
    system = LocalSystem(
        postgres,
        {spec.name: free_port() for spec in SERVICES},
        log_dir=log_dir,
        jwt_secret=TEST_JWT_SECRET,
        coordinator_token_secret=TEST_COORDINATOR_SECRET,
        service_token_secret=TEST_SERVICE_SECRET,
        database_prefix=f"shard{uuid.uuid4().hex[:8]}_",
    )
    second_database = system.database_prefix + "accounts_shard1"
    shard_urls = [system.database_url("accounts_service"), postgres.url(second_database)]
    system.add_instance("accounts_service", SHARDS[1], free_port(), {"DATABASE_URL": shard_urls[1]})
    system.prepare(seed=False)
    asyncio.run(postgres.create_database(second_database))
    system.run_command(SHARDS[1], "migrate")
    for name in ("customer_service", *SHARDS):
        system.start(name)
    system.start("transactions_service", {"ACCOUNTS_SHARD_URLS": ",".join(system.url(name) for name in SHARDS)})
    return system, shard_urls


@pytest.fixture(scope="module")
def sharded(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalSystem, list]]:
    system, shard_urls = None, []
    try:
        system, shard_urls = _start_sharded(postgres, tmp_path_factory.mktemp("shard-logs"))
        yield system, shard_urls
    finally:
        if system is not None:
            system.stop_all()


@pytest_asyncio.fixture(loop_scope="session")
async def shard_api(sharded) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield Api(session, sharded[0])


async def _open_on(database_url: str, shard: int, *, misplaced: bool = False) -> uuid.UUID:
    """An account written straight into one shard's database, with an id that routes to it (or, misplaced,
    to the other shard): POST /accounts picks its own id, and this test must choose where an account lives."""
    account_id = uuid.uuid4()
    while (account_id.int % len(SHARDS) == shard) == misplaced:
        account_id = uuid.uuid4()
    engine = create_engine(database_url, pool_size=1)
    try:
        await service.open_account(engine, ALICE, OPENING, account_id=account_id)
    finally:
        await engine.dispose()
    return account_id


async def _read(database_url: str, query: str, value: uuid.UUID) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(query, value)
    finally:
        await connection.close()


async def _account(database_url: str, account_id: uuid.UUID) -> tuple[Decimal, uuid.UUID | None] | None:
    rows = await _read(database_url, _ACCOUNT, account_id)
    return (rows[0]["balance"], rows[0]["transaction_lock"]) if rows else None


async def _legs(database_url: str, transaction_id: str) -> list[tuple[uuid.UUID, str, Decimal]]:
    return [
        (row["account_id"], row["state"], row["change"])
        for row in await _read(database_url, _LEGS, uuid.UUID(transaction_id))
    ]


async def test_a_transfer_across_the_shards_commits_each_leg_on_its_own_shard(sharded, shard_api: Api) -> None:
    _system, shard_urls = sharded
    source, destination = await _open_on(shard_urls[0], 0), await _open_on(shard_urls[1], 1)

    answer = await shard_api.transfer(source, destination, Decimal("250.5"))

    assert answer.status == 200, answer.body
    assert answer.data["status"] == "committed" and answer.data["completed"] is True
    transaction_id = answer.data["transaction_id"]
    assert await _account(shard_urls[0], source) == (OPENING - Decimal("250.5"), None)
    assert await _account(shard_urls[1], destination) == (OPENING + Decimal("250.5"), None)
    assert await _account(shard_urls[0], destination) is None and await _account(shard_urls[1], source) is None
    assert await _legs(shard_urls[0], transaction_id) == [(source, "committed", Decimal("-250.5"))]
    assert await _legs(shard_urls[1], transaction_id) == [(destination, "committed", Decimal("250.5"))]


async def test_a_refused_leg_on_one_shard_leaves_both_shards_untouched(sharded, shard_api: Api) -> None:
    _system, shard_urls = sharded
    source, destination = await _open_on(shard_urls[0], 0), await _open_on(shard_urls[1], 1)

    answer = await shard_api.transfer(destination, source, OPENING * 3)

    assert answer.status == 409, answer.body
    assert answer.error_code == "INSUFFICIENT_FUNDS"
    transaction_id = answer.body["error"]["details"]["transaction_id"]
    assert await _account(shard_urls[0], source) == (OPENING, None)
    assert await _account(shard_urls[1], destination) == (OPENING, None)
    for shard_url in shard_urls:
        assert all(state == "aborted" for _account_id, state, _change in await _legs(shard_url, transaction_id))


async def test_a_transfer_within_one_shard_never_reaches_the_other(sharded, shard_api: Api) -> None:
    _system, shard_urls = sharded
    source, destination = await _open_on(shard_urls[1], 1), await _open_on(shard_urls[1], 1)

    answer = await shard_api.transfer(source, destination, Decimal("10"))

    assert answer.status == 200, answer.body
    transaction_id = answer.data["transaction_id"]
    assert [state for _account_id, state, _change in await _legs(shard_urls[1], transaction_id)] == ["committed"] * 2
    assert await _legs(shard_urls[0], transaction_id) == []


async def test_an_account_written_on_the_wrong_shard_is_not_found(sharded, shard_api: Api) -> None:
    """Routing is by id alone: an account stored where its id does not route is never reached."""
    _system, shard_urls = sharded
    misplaced, destination = await _open_on(shard_urls[0], 0, misplaced=True), await _open_on(shard_urls[0], 0)

    answer = await shard_api.transfer(misplaced, destination, Decimal("10"))

    assert answer.status == 409, answer.body
    assert answer.error_code == "NOT_FOUND"
    assert await _account(shard_urls[0], misplaced) == (OPENING, None)
    assert await _account(shard_urls[0], destination) == (OPENING, None)
