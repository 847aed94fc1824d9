"""The participant's tombstone purge: old abort tombstones go, in bounded batches; nothing else ever does."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from uuid import UUID

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import participant
from accounts_service.domain import ParticipantState
from accounts_service.recovery import ParticipantRecoverySettings, purge_tombstones
from shared.database import create_engine
from tests.integration.test_participant import assert_ledger_holds, log_rows, open_accounts, transfer_changes

RETENTION_S = 3600.0
# Older than the retention: only rows this module ages are, because every other test's rows are minutes old.
AGED = "2 hours"
_AGE = text(
    f"UPDATE participant_log SET updated_at = now() - interval '{AGED}' WHERE transaction_id = ANY(:transaction_ids)"
)


@pytest_asyncio.fixture(loop_scope="session")
async def engine(accounts_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(accounts_db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _age(engine: AsyncEngine, *transaction_ids: UUID) -> None:
    async with engine.begin() as connection:
        await connection.execute(_AGE, {"transaction_ids": list(transaction_ids)})


async def _purge_until_done(engine: AsyncEngine, batch_max: int) -> list[int]:
    settings = ParticipantRecoverySettings(tombstone_retention_s=RETENTION_S, batch_max=batch_max)
    purged = [await purge_tombstones(engine, settings)]
    while purged[-1]:
        purged.append(await purge_tombstones(engine, settings))
    return purged


async def test_only_tombstones_older_than_the_retention_are_purged_in_bounded_batches(engine) -> None:
    source, destination = await open_accounts(engine, 100, 100)
    changes = transfer_changes(source, destination, 10)
    never_prepared, prepared_then_aborted, young, committed = (uuid.uuid4() for _ in range(4))
    await participant.abort(engine, never_prepared, changes)  # tombstones only
    assert (await participant.prepare(engine, prepared_then_aborted, changes)).yes
    await participant.abort(engine, prepared_then_aborted, changes)  # prepared, released, aborted
    await participant.abort(engine, young, changes)
    assert (await participant.prepare(engine, committed, changes)).yes
    await participant.commit(engine, committed)
    await _age(engine, never_prepared, prepared_then_aborted, committed)

    purged = await _purge_until_done(engine, batch_max=3)

    assert purged == [3, 1, 0], "four aged tombstone rows, at most three a pass"
    assert await log_rows(engine, never_prepared) == {}
    assert await log_rows(engine, prepared_then_aborted) == {}
    assert [row["state"] for row in (await log_rows(engine, young)).values()] == [ParticipantState.ABORTED] * 2
    assert [row["state"] for row in (await log_rows(engine, committed)).values()] == [ParticipantState.COMMITTED] * 2, (
        "the ledger is never purged, however old"
    )
    await assert_ledger_holds(engine, [source, destination])


async def test_a_young_tombstone_still_refuses_a_late_prepare(engine) -> None:
    source, destination = await open_accounts(engine, 100, 100)
    changes = transfer_changes(source, destination, 10)
    transaction_id = uuid.uuid4()
    await participant.abort(engine, transaction_id, changes)

    assert await _purge_until_done(engine, batch_max=100) == [0]
    late = await participant.prepare(engine, transaction_id, changes)

    assert not late.yes
