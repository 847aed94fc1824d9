"""The 2PC participant (accounts_service.participant and .service) against a real PostgreSQL database.

Every test opens its own accounts with random ids, drives prepare/commit/abort directly, and checks the
rows, the participant log and the ledger invariant (balance == sum of committed changes) afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import participant, service
from accounts_service.domain import LedgerKind, Leg, ParticipantState, VoteReason
from shared.database import create_engine
from shared.errors import AccountLockedError, ConflictError, NotFoundError

FAST_BUSY_WAIT_S = 0.05
# How long a test waits for another backend to block on a row lock before giving up (a bound, not a timing).
BLOCKED_POLL_LIMIT_S = 10.0

_ACCOUNT_STATE = text("""
    SELECT a.account_id, a.balance, a.transaction_lock, a.pending_change,
           COALESCE((SELECT sum(l.change) FROM participant_log l
                     WHERE l.account_id = a.account_id AND l.state = 'committed'), 0) AS ledger_sum
    FROM accounts a WHERE a.account_id = ANY(:account_ids)""")
_LOG_ROWS = text("""
    SELECT account_id, state, change, kind, reason FROM participant_log
    WHERE transaction_id = :transaction_id ORDER BY account_id""")
_BLOCKED_BACKENDS = text("""
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE :pattern""")


@pytest_asyncio.fixture(loop_scope="session")
async def engine(accounts_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(accounts_db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


# --- helpers, also used by the state machine -------------------------------------------------------------------


async def open_accounts(engine: AsyncEngine, *balances: Decimal | int | str) -> list[UUID]:
    customer_id = uuid.uuid4()
    ids = []
    for balance in balances:
        row = await service.open_account(engine, customer_id, Decimal(balance), account_id=uuid.uuid4())
        ids.append(row["account_id"])
    return ids


async def account_states(engine: AsyncEngine, account_ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    async with engine.connect() as connection:
        rows = (await connection.execute(_ACCOUNT_STATE, {"account_ids": list(account_ids)})).all()
    return {row.account_id: dict(row._mapping) for row in rows}


async def balances(engine: AsyncEngine, *account_ids: UUID) -> list[Decimal]:
    states = await account_states(engine, list(account_ids))
    return [states[account_id]["balance"] for account_id in account_ids]


async def log_rows(engine: AsyncEngine, transaction_id: UUID) -> dict[UUID, dict[str, Any]]:
    async with engine.connect() as connection:
        rows = (await connection.execute(_LOG_ROWS, {"transaction_id": transaction_id})).all()
    return {row.account_id: dict(row._mapping) for row in rows}


async def assert_ledger_holds(engine: AsyncEngine, account_ids: list[UUID]) -> None:
    """Each account: balance == its committed ledger, no negative balance, lock and pending change together."""
    for account_id, state in (await account_states(engine, account_ids)).items():
        assert state["balance"] == state["ledger_sum"], f"ledger broken on {account_id}: {state}"
        assert state["balance"] >= 0
        assert (state["transaction_lock"] is None) == (state["pending_change"] is None)
        assert state["balance"] + (state["pending_change"] or 0) >= 0


def transfer_changes(source: UUID, destination: UUID, amount: Decimal | int | str) -> list[Leg]:
    return [Leg(source, -Decimal(amount)), Leg(destination, Decimal(amount))]


async def wait_until_blocked(engine: AsyncEngine, pattern: str) -> None:
    """Poll until some backend waits on a lock while running a statement like `pattern` (bounded)."""
    give_up_at = time.monotonic() + BLOCKED_POLL_LIMIT_S
    while time.monotonic() < give_up_at:
        async with engine.connect() as connection:
            if (await connection.execute(_BLOCKED_BACKENDS, {"pattern": pattern})).scalar_one() > 0:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no backend blocked on {pattern!r}")


async def wait_until_done_or_blocked(engine: AsyncEngine, task: asyncio.Task, pattern: str) -> None:
    give_up_at = time.monotonic() + BLOCKED_POLL_LIMIT_S
    while time.monotonic() < give_up_at and not task.done():
        async with engine.connect() as connection:
            if (await connection.execute(_BLOCKED_BACKENDS, {"pattern": pattern})).scalar_one() > 0:
                return
        await asyncio.sleep(0.01)
    assert task.done(), f"the task neither finished nor blocked on {pattern!r}"


# --- prepare ---------------------------------------------------------------------------------------------------


async def test_prepare_locks_both_legs_and_votes_yes(engine):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    vote = await participant.prepare(engine, transaction_id, transfer_changes(source, destination, "30.5"))
    assert vote.yes
    states = await account_states(engine, [source, destination])
    assert states[source]["transaction_lock"] == transaction_id
    assert states[source]["pending_change"] == Decimal("-30.5")
    assert states[destination]["transaction_lock"] == transaction_id
    assert states[destination]["pending_change"] == Decimal("30.5")
    assert await balances(engine, source, destination) == [100, 50]
    rows = await log_rows(engine, transaction_id)
    assert {row["state"] for row in rows.values()} == {ParticipantState.PREPARED}
    assert rows[source]["change"] == Decimal("-30.5")
    await assert_ledger_holds(engine, [source, destination])


async def test_repeated_prepare_votes_yes_again_and_changes_nothing(engine):
    source, destination = await open_accounts(engine, 100, 0)
    transaction_id = uuid.uuid4()
    changes = transfer_changes(source, destination, 40)
    assert (await participant.prepare(engine, transaction_id, changes)).yes
    before = await account_states(engine, [source, destination])
    log_before = await log_rows(engine, transaction_id)
    for _ in range(3):
        assert (await participant.prepare(engine, transaction_id, list(reversed(changes)))).yes
    assert await account_states(engine, [source, destination]) == before
    assert await log_rows(engine, transaction_id) == log_before


async def test_prepare_with_insufficient_funds_votes_no_leaves_tombstones_and_locks_nothing(engine):
    source, destination = await open_accounts(engine, 10, 0)
    transaction_id = uuid.uuid4()
    vote = await participant.prepare(engine, transaction_id, transfer_changes(source, destination, "10.0001"))
    assert not vote.yes
    assert vote.reason is VoteReason.INSUFFICIENT_FUNDS
    states = await account_states(engine, [source, destination])
    assert all(state["transaction_lock"] is None for state in states.values())
    rows = await log_rows(engine, transaction_id)
    assert set(rows) == {source, destination}
    assert all(row["state"] == ParticipantState.ABORTED for row in rows.values())
    assert all(row["reason"] == VoteReason.INSUFFICIENT_FUNDS for row in rows.values())
    assert await balances(engine, source, destination) == [10, 0]
    # The tombstone means NO forever, even once the money is there.
    await service.adjust_balance(engine, source, Decimal(1000), reason="top up")
    again = await participant.prepare(engine, transaction_id, transfer_changes(source, destination, "10.0001"))
    assert again.reason is VoteReason.ALREADY_ABORTED
    await assert_ledger_holds(engine, [source, destination])


async def test_prepare_of_an_exact_balance_is_allowed(engine):
    source, destination = await open_accounts(engine, "10.0001", 0)
    transaction_id = uuid.uuid4()
    assert (await participant.prepare(engine, transaction_id, transfer_changes(source, destination, "10.0001"))).yes
    await participant.commit(engine, transaction_id)
    assert await balances(engine, source, destination) == [0, Decimal("10.0001")]
    await assert_ledger_holds(engine, [source, destination])


async def test_prepare_on_an_unknown_account_votes_account_not_found(engine):
    (source,) = await open_accounts(engine, 100)
    unknown = uuid.uuid4()
    transaction_id = uuid.uuid4()
    vote = await participant.prepare(engine, transaction_id, transfer_changes(source, unknown, 5))
    assert not vote.yes
    assert vote.reason is VoteReason.ACCOUNT_NOT_FOUND
    assert (await account_states(engine, [source]))[source]["transaction_lock"] is None
    assert (await log_rows(engine, transaction_id))[source]["state"] == ParticipantState.ABORTED


async def test_prepare_on_a_busy_account_votes_account_busy_after_the_bounded_wait(engine):
    # Three accounts; the second transfer shares `shared` with the first and also touches `free`.
    shared, first_other, free = await open_accounts(engine, 100, 100, 100)
    first = uuid.uuid4()
    assert (await participant.prepare(engine, first, transfer_changes(shared, first_other, 10))).yes
    second = uuid.uuid4()
    vote = await participant.prepare(engine, second, transfer_changes(free, shared, 10), busy_wait_s=FAST_BUSY_WAIT_S)
    assert not vote.yes
    assert vote.reason is VoteReason.ACCOUNT_BUSY
    states = await account_states(engine, [shared, first_other, free])
    assert states[shared]["transaction_lock"] == first
    assert states[shared]["pending_change"] == Decimal(-10)
    assert states[free]["transaction_lock"] is None, "a refused prepare locks nothing, whatever the order"
    rows = await log_rows(engine, second)
    assert all(row["state"] == ParticipantState.ABORTED for row in rows.values())
    await participant.commit(engine, first)
    assert await balances(engine, shared, first_other, free) == [90, 110, 100]
    await assert_ledger_holds(engine, [shared, first_other, free])


async def test_prepare_waits_for_a_busy_account_that_frees_up(engine):
    source, destination = await open_accounts(engine, 100, 0)
    first, second = uuid.uuid4(), uuid.uuid4()
    assert (await participant.prepare(engine, first, transfer_changes(source, destination, 10))).yes
    waiting = asyncio.create_task(
        participant.prepare(engine, second, transfer_changes(source, destination, 20), busy_wait_s=30.0)
    )
    await participant.commit(engine, first)
    assert (await waiting).yes
    await participant.commit(engine, second)
    assert await balances(engine, source, destination) == [70, 30]
    await assert_ledger_holds(engine, [source, destination])


# --- commit ----------------------------------------------------------------------------------------------------


async def test_commit_applies_pending_changes_and_clears_locks(engine):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    await participant.prepare(engine, transaction_id, transfer_changes(source, destination, "25.25"))
    rows = await participant.commit(engine, transaction_id)
    assert {row["state"] for row in rows} == {ParticipantState.COMMITTED}
    states = await account_states(engine, [source, destination])
    assert states[source]["balance"] == Decimal("74.75")
    assert states[destination]["balance"] == Decimal("75.25")
    assert all(state["transaction_lock"] is None and state["pending_change"] is None for state in states.values())
    await assert_ledger_holds(engine, [source, destination])
    ledger = await service.ledger(engine, source, 10, 0)
    assert [(row["transaction_id"], row["change"], row["kind"]) for row in ledger][0] == (
        transaction_id,
        Decimal("-25.25"),
        LedgerKind.TRANSFER,
    )


async def test_repeated_commit_is_a_no_op(engine):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    await participant.prepare(engine, transaction_id, transfer_changes(source, destination, 30))
    first_rows = await participant.commit(engine, transaction_id)
    for _ in range(3):
        assert await participant.commit(engine, transaction_id) == first_rows
    assert await balances(engine, source, destination) == [70, 80]
    await assert_ledger_holds(engine, [source, destination])


async def test_concurrent_duplicate_commits_apply_once(engine):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    await participant.prepare(engine, transaction_id, transfer_changes(source, destination, 30))
    await asyncio.gather(*(participant.commit(engine, transaction_id) for _ in range(5)))
    assert await balances(engine, source, destination) == [70, 80]
    await assert_ledger_holds(engine, [source, destination])


async def test_commit_of_an_unknown_transfer_is_a_conflict(engine):
    with pytest.raises(ConflictError):
        await participant.commit(engine, uuid.uuid4())


async def test_commit_after_a_no_vote_is_a_conflict(engine):
    source, destination = await open_accounts(engine, 5, 0)
    transaction_id = uuid.uuid4()
    assert not (await participant.prepare(engine, transaction_id, transfer_changes(source, destination, 6))).yes
    with pytest.raises(ConflictError):
        await participant.commit(engine, transaction_id)
    assert await balances(engine, source, destination) == [5, 0]


# --- abort -----------------------------------------------------------------------------------------------------


async def test_abort_releases_locks_and_leaves_balances(engine):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    changes = transfer_changes(source, destination, 30)
    await participant.prepare(engine, transaction_id, changes)
    rows = await participant.abort(engine, transaction_id, changes)
    assert {row["state"] for row in rows} == {ParticipantState.ABORTED}
    states = await account_states(engine, [source, destination])
    assert all(state["transaction_lock"] is None and state["pending_change"] is None for state in states.values())
    assert await balances(engine, source, destination) == [100, 50]
    await assert_ledger_holds(engine, [source, destination])


async def test_abort_without_the_changes_still_releases(engine):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    await participant.prepare(engine, transaction_id, transfer_changes(source, destination, 30))
    await participant.abort(engine, transaction_id, [])
    states = await account_states(engine, [source, destination])
    assert all(state["transaction_lock"] is None for state in states.values())


async def test_repeated_abort_is_a_no_op(engine):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    changes = transfer_changes(source, destination, 30)
    await participant.prepare(engine, transaction_id, changes)
    first_rows = await participant.abort(engine, transaction_id, changes)
    for _ in range(3):
        assert await participant.abort(engine, transaction_id, changes) == first_rows
        assert await participant.abort(engine, transaction_id, []) == first_rows
    assert await balances(engine, source, destination) == [100, 50]
    await assert_ledger_holds(engine, [source, destination])


async def test_abort_before_prepare_leaves_a_tombstone_and_the_late_prepare_votes_no(engine):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    changes = transfer_changes(source, destination, 30)
    rows = await participant.abort(engine, transaction_id, changes)
    assert {row["account_id"] for row in rows} == {source, destination}
    assert {row["state"] for row in rows} == {ParticipantState.ABORTED}
    vote = await participant.prepare(engine, transaction_id, changes)
    assert not vote.yes
    assert vote.reason is VoteReason.ALREADY_ABORTED
    states = await account_states(engine, [source, destination])
    assert all(state["transaction_lock"] is None for state in states.values())
    with pytest.raises(ConflictError):
        await participant.commit(engine, transaction_id)
    assert await balances(engine, source, destination) == [100, 50]


async def test_a_tombstone_on_one_leg_refuses_the_whole_late_prepare(engine):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    changes = transfer_changes(source, destination, 30)
    await participant.abort(engine, transaction_id, changes[:1])
    vote = await participant.prepare(engine, transaction_id, changes)
    assert vote.reason is VoteReason.ALREADY_ABORTED
    states = await account_states(engine, [source, destination])
    assert all(state["transaction_lock"] is None for state in states.values())


async def test_commit_after_abort_is_a_conflict_and_changes_nothing(engine):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    changes = transfer_changes(source, destination, 30)
    await participant.prepare(engine, transaction_id, changes)
    await participant.abort(engine, transaction_id, changes)
    with pytest.raises(ConflictError):
        await participant.commit(engine, transaction_id)
    assert await balances(engine, source, destination) == [100, 50]
    assert {row["state"] for row in (await log_rows(engine, transaction_id)).values()} == {ParticipantState.ABORTED}
    await assert_ledger_holds(engine, [source, destination])


async def test_abort_after_commit_is_a_conflict_and_changes_nothing(engine):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    changes = transfer_changes(source, destination, 30)
    await participant.prepare(engine, transaction_id, changes)
    await participant.commit(engine, transaction_id)
    with pytest.raises(ConflictError):
        await participant.abort(engine, transaction_id, changes)
    with pytest.raises(ConflictError):
        await participant.abort(engine, transaction_id, [])
    assert await balances(engine, source, destination) == [70, 80]
    assert {row["state"] for row in (await log_rows(engine, transaction_id)).values()} == {ParticipantState.COMMITTED}
    await assert_ledger_holds(engine, [source, destination])


# --- races between the protocol messages of one transfer ------------------------------------------------------


async def test_prepare_that_loses_a_race_with_abort_votes_no(engine, accounts_db_url):
    source, destination = await open_accounts(engine, 100, 50)
    first, _second = sorted([source, destination])
    transaction_id = uuid.uuid4()
    changes = transfer_changes(source, destination, 30)
    blocker = create_engine(accounts_db_url, pool_size=1)
    try:
        async with blocker.connect() as holder:
            await holder.execute(text("SELECT 1 FROM accounts WHERE account_id = :id FOR UPDATE"), {"id": first})
            # prepare has read the (empty) log and now waits on the first account's row.
            preparing = asyncio.create_task(participant.prepare(engine, transaction_id, changes))
            await wait_until_blocked(engine, "%SET transaction_lock = %")
            await participant.abort(engine, transaction_id, changes)
            await holder.rollback()
        vote = await preparing
    finally:
        await blocker.dispose()
    states = await account_states(engine, [source, destination])
    assert all(state["transaction_lock"] is None for state in states.values())
    assert not vote.yes
    assert vote.reason is VoteReason.ALREADY_ABORTED


async def test_abort_racing_an_open_prepare_never_leaves_locks_behind(engine, accounts_db_url):
    source, destination = await open_accounts(engine, 100, 50)
    ordered = sorted([source, destination])
    transaction_id = uuid.uuid4()
    changes = transfer_changes(source, destination, 30)
    blocker = create_engine(accounts_db_url, pool_size=1)
    try:
        async with blocker.connect() as holder:
            # prepare locks the first account in its one statement, then waits on the second one's row.
            await holder.execute(text("SELECT 1 FROM accounts WHERE account_id = :id FOR UPDATE"), {"id": ordered[1]})
            preparing = asyncio.create_task(participant.prepare(engine, transaction_id, changes))
            await wait_until_blocked(engine, "%SET transaction_lock = %")
            aborting = asyncio.create_task(
                participant.abort(engine, transaction_id, sorted(changes, key=lambda change: change.account_id))
            )
            # The abort either waits for a prepare that already wrote its log rows, or (the prepare being
            # one statement that has written nothing yet) commits its tombstones at once.
            await wait_until_done_or_blocked(engine, aborting, "%ON CONFLICT%")
            await holder.rollback()
        vote = await preparing
        aborted_rows = await aborting
    finally:
        await blocker.dispose()

    # Either way the abort is acknowledged, so the coordinator never sends anything for this transfer
    # again: whatever the prepare voted, nothing may stay locked or applied.
    states = await account_states(engine, [source, destination])
    assert [row["state"] for row in aborted_rows] == [ParticipantState.ABORTED] * 2
    assert [row["state"] for row in (await log_rows(engine, transaction_id)).values()] == [ParticipantState.ABORTED] * 2
    assert [states[account]["transaction_lock"] for account in ordered] == [None, None], f"vote {vote}: {states}"
    assert await balances(engine, source, destination) == [Decimal(100), Decimal(50)]
    await assert_ledger_holds(engine, [source, destination])


# --- the ledger and admin adjustments --------------------------------------------------------------------------


async def test_the_ledger_holds_after_a_mix_of_outcomes(engine):
    a, b, c = await open_accounts(engine, 100, 100, 100)
    committed, aborted, refused, early_aborted = (uuid.uuid4() for _ in range(4))
    await participant.prepare(engine, committed, transfer_changes(a, b, 40))
    await participant.commit(engine, committed)
    await participant.prepare(engine, aborted, transfer_changes(b, c, 70))
    await participant.abort(engine, aborted, transfer_changes(b, c, 70))
    await participant.prepare(engine, refused, transfer_changes(c, a, 101))
    await participant.abort(engine, early_aborted, transfer_changes(a, c, 1))
    await participant.prepare(engine, early_aborted, transfer_changes(a, c, 1))
    await service.adjust_balance(engine, c, Decimal("12.3456"), reason="test")
    assert await balances(engine, a, b, c) == [60, 140, Decimal("12.3456")]
    await assert_ledger_holds(engine, [a, b, c])


async def test_adjust_balance_writes_an_adjustment_ledger_row(engine):
    (account,) = await open_accounts(engine, 100)
    row = await service.adjust_balance(engine, account, Decimal("150.5"), reason="correction by test")
    assert row["balance"] == Decimal("150.5")
    ledger = await service.ledger(engine, account, 10, 0)
    adjustments = [entry for entry in ledger if entry["kind"] == LedgerKind.ADJUSTMENT]
    assert [entry["change"] for entry in adjustments] == [Decimal("50.5")]
    assert {entry["kind"] for entry in ledger} == {LedgerKind.OPENING, LedgerKind.ADJUSTMENT}
    await service.adjust_balance(engine, account, Decimal("150.5"), reason="no change")
    assert len(await service.ledger(engine, account, 10, 0)) == 2, "an adjustment to the same balance logs nothing"
    await service.adjust_balance(engine, account, Decimal(0), reason="to zero")
    await assert_ledger_holds(engine, [account])


async def test_adjust_balance_is_refused_while_a_transfer_holds_the_account(engine):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    await participant.prepare(engine, transaction_id, transfer_changes(source, destination, 30))
    for account in (source, destination):
        with pytest.raises(AccountLockedError):
            await service.adjust_balance(engine, account, Decimal(0), reason="must be refused")
    assert await balances(engine, source, destination) == [100, 50]
    assert len(await service.ledger(engine, source, 10, 0)) == 1
    await participant.commit(engine, transaction_id)
    await service.adjust_balance(engine, source, Decimal(0), reason="now allowed")
    assert await balances(engine, source, destination) == [0, 80]
    await assert_ledger_holds(engine, [source, destination])


async def test_adjust_balance_of_an_unknown_account_is_not_found(engine):
    with pytest.raises(NotFoundError):
        await service.adjust_balance(engine, uuid.uuid4(), Decimal(1), reason="nobody")


# --- contention ------------------------------------------------------------------------------------------------


async def test_concurrent_prepares_on_a_hot_account_never_overdraw_it(engine):
    transfers = 20
    amount = Decimal(30)
    opening = Decimal(100)  # enough for three of the twenty
    source, *destinations = await open_accounts(engine, opening, *([0] * transfers))
    every_account = [source, *destinations]
    done = asyncio.Event()
    observed_negative: list[dict[str, Any]] = []

    async def watch_balances() -> int:
        samples = 0
        while not done.is_set() and samples < 10_000:
            for state in (await account_states(engine, every_account)).values():
                if state["balance"] < 0 or state["balance"] + (state["pending_change"] or 0) < 0:
                    observed_negative.append(state)
            samples += 1
            await asyncio.sleep(0)
        return samples

    async def one_transfer(destination: UUID) -> bool:
        """As a coordinator would: prepare, then commit on YES and abort on NO."""
        transaction_id = uuid.uuid4()
        changes = transfer_changes(source, destination, amount)
        vote = await participant.prepare(engine, transaction_id, changes, busy_wait_s=2.0)
        if vote.yes:
            await participant.commit(engine, transaction_id)
        else:
            assert vote.reason in (VoteReason.INSUFFICIENT_FUNDS, VoteReason.ACCOUNT_BUSY)
            await participant.abort(engine, transaction_id, changes)
        return vote.yes

    watcher = asyncio.create_task(watch_balances())
    try:
        outcomes = await asyncio.gather(*(one_transfer(destination) for destination in destinations))
    finally:
        done.set()
        assert await watcher > 0
    committed = sum(outcomes)
    assert 1 <= committed <= opening // amount
    assert observed_negative == []
    states = await account_states(engine, every_account)
    assert states[source]["balance"] == opening - committed * amount
    assert sum(state["balance"] for state in states.values()) == opening, "money is conserved"
    assert sorted(states[d]["balance"] for d in destinations) == [0] * (transfers - committed) + [amount] * committed
    assert all(state["transaction_lock"] is None for state in states.values())
    await assert_ledger_holds(engine, every_account)
