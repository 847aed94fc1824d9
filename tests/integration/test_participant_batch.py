"""The participant's batch routes (accounts_service.participant_batch) against a real PostgreSQL database.

Each test opens its own accounts with random ids, drives prepare_batch / commit_batch / abort_batch directly
(and the single routes where a test needs an earlier state), and checks votes, rows, the participant log
and the ledger invariant afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from uuid import UUID

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import participant, participant_batch
from accounts_service.domain import BatchEntry, Leg, ParticipantState, Vote, VoteReason, in_global_order
from accounts_service.participant import ReleaseSignals
from accounts_service.participant_batch import DecisionEntry
from shared.database import create_engine
from tests.integration.test_participant import (
    account_states,
    assert_ledger_holds,
    balances,
    log_rows,
    open_accounts,
    transfer_changes,
)

FAST_BUSY_WAIT_S = 0.05
# A later entry on an account an earlier entry of its message took must not wait out the busy wait.
AT_ONCE_S = 1.0
CONCURRENT_ROUNDS = 20
ROUND_LIMIT_S = 30.0
_DEADLOCKS = text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
# PostgreSQL publishes a backend's statistics within about a second (PGSTAT_MIN_INTERVAL); wait that out.
STATS_FLUSH_S = 1.5


@pytest_asyncio.fixture(loop_scope="session")
async def engine(accounts_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(accounts_db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


def entry(transaction_id: UUID, changes: list[Leg]) -> BatchEntry:
    return BatchEntry(transaction_id, tuple(in_global_order(changes)))


def decision(transaction_id: UUID, changes: list[Leg] | None = None) -> DecisionEntry:
    return DecisionEntry(transaction_id, tuple(changes or ()))


def reasons(votes: list[Vote]) -> list[str | None]:
    return ["yes" if vote.yes else vote.reason and vote.reason.value for vote in votes]


async def test_a_batch_votes_per_transfer_and_each_vote_is_the_single_routes(engine):
    a, b, poor, c, d, e, f, g, h, i, j = await open_accounts(engine, 100, 0, 5, 0, 100, 100, 100, 0, 100, 0, 0)
    committed, tombstoned = uuid.uuid4(), uuid.uuid4()
    assert (await participant.prepare(engine, committed, transfer_changes(f, g, 10))).yes
    await participant.commit(engine, committed)
    await participant.abort(engine, tombstoned, transfer_changes(h, i, 10))
    fresh, short, missing, unbalanced = (uuid.uuid4() for _ in range(4))
    unknown = uuid.uuid4()
    entries = [
        entry(fresh, transfer_changes(a, b, 30)),
        entry(short, transfer_changes(poor, c, 10)),
        entry(missing, transfer_changes(d, unknown, 5)),
        entry(unbalanced, [Leg(e, Decimal(-10)), Leg(j, Decimal(11))]),
        entry(committed, transfer_changes(f, g, 10)),
        entry(tombstoned, transfer_changes(h, i, 10)),
    ]
    votes = await participant_batch.prepare_batch(engine, entries, busy_wait_s=FAST_BUSY_WAIT_S)
    assert reasons(votes) == [
        "yes",
        "insufficient_funds",
        "account_not_found",
        "invalid_legs",
        "yes",
        "already_aborted",
    ]

    assert {row["state"] for row in (await log_rows(engine, fresh)).values()} == {ParticipantState.PREPARED}
    for refused, reason in ((short, "insufficient_funds"), (missing, "account_not_found")):
        rows = await log_rows(engine, refused)
        assert rows and {(row["state"], row["reason"]) for row in rows.values()} == {(ParticipantState.ABORTED, reason)}
    assert await log_rows(engine, unbalanced) == {}, "invalid legs write nothing"
    states = await account_states(engine, [a, b, poor, c, d, e, f, g, h, i, j])
    assert {account for account, state in states.items() if state["transaction_lock"] is not None} == {a, b}
    assert states[a]["pending_change"] == Decimal(-30)
    assert await balances(engine, f, g) == [90, 10], "a repeat of a committed transfer changes nothing"

    # The votes stand when the same message comes again; the NOs are NO forever.
    assert reasons(await participant_batch.prepare_batch(engine, entries, busy_wait_s=FAST_BUSY_WAIT_S)) == [
        "yes",
        "already_aborted",
        "already_aborted",
        "invalid_legs",
        "yes",
        "already_aborted",
    ]
    results = await participant_batch.commit_batch(engine, [decision(fresh)])
    assert [result.acknowledged for result in results] == [True]
    assert await balances(engine, a, b) == [70, 30]
    await assert_ledger_holds(engine, [a, b, poor, c, d, e, f, g, h, i, j])


async def test_a_repeat_of_a_prepared_transfer_votes_yes_again_and_changes_nothing(engine):
    source, destination = await open_accounts(engine, 100, 0)
    transaction_id = uuid.uuid4()
    changes = transfer_changes(source, destination, 40)
    assert (await participant.prepare(engine, transaction_id, changes)).yes
    before = await account_states(engine, [source, destination])
    log_before = await log_rows(engine, transaction_id)
    votes = await participant_batch.prepare_batch(engine, [entry(transaction_id, changes)])
    assert reasons(votes) == ["yes"]
    assert await account_states(engine, [source, destination]) == before
    assert await log_rows(engine, transaction_id) == log_before


async def test_a_one_leg_entry_balances_with_the_leg_already_held(engine):
    source, destination, other_source, other_destination, lone = await open_accounts(engine, 100, 0, 100, 0, 0)
    balanced, unbalanced, elsewhere = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert (await participant.prepare(engine, balanced, [Leg(source, Decimal(-10))])).yes
    assert (await participant.prepare(engine, unbalanced, [Leg(other_source, Decimal(-10))])).yes
    votes = await participant_batch.prepare_batch(
        engine,
        [
            entry(balanced, [Leg(destination, Decimal(10))]),
            entry(unbalanced, [Leg(other_destination, Decimal(11))]),
            entry(elsewhere, [Leg(lone, Decimal(5))]),  # its other leg lives at another participant
        ],
    )
    assert reasons(votes) == ["yes", "invalid_legs", "yes"]
    assert set(await log_rows(engine, unbalanced)) == {other_source}, "the invalid entry wrote nothing"
    assert (await account_states(engine, [other_destination]))[other_destination]["transaction_lock"] is None


async def test_two_transfers_of_one_batch_on_one_account_the_earlier_takes_it(engine):
    shared, first_destination, second_destination = await open_accounts(engine, 100, 0, 0)
    first, second = uuid.uuid4(), uuid.uuid4()
    started = time.monotonic()
    votes = await participant_batch.prepare_batch(
        engine,
        [
            entry(first, transfer_changes(shared, first_destination, 10)),
            entry(second, transfer_changes(shared, second_destination, 5)),
        ],
        busy_wait_s=30.0,
    )
    assert time.monotonic() - started < AT_ONCE_S, "the later entry cannot win by waiting: it votes at once"
    assert reasons(votes) == ["yes", "account_busy"]
    states = await account_states(engine, [shared, first_destination, second_destination])
    assert states[shared]["transaction_lock"] == first
    assert states[second_destination]["transaction_lock"] is None, "a refused entry locks none of its legs"
    assert {row["state"] for row in (await log_rows(engine, second)).values()} == {ParticipantState.ABORTED}
    await participant_batch.commit_batch(engine, [decision(first)])
    await participant_batch.abort_batch(engine, [decision(second, transfer_changes(shared, second_destination, 5))])
    assert await balances(engine, shared, first_destination, second_destination) == [90, 10, 0]
    await assert_ledger_holds(engine, [shared, first_destination, second_destination])


async def test_an_earlier_entry_that_votes_no_leaves_the_account_to_a_later_one(engine):
    shared, first_destination, second_destination = await open_accounts(engine, 100, 0, 0)
    first, second = uuid.uuid4(), uuid.uuid4()
    votes = await participant_batch.prepare_batch(
        engine,
        [
            entry(first, transfer_changes(shared, first_destination, 1000)),
            entry(second, transfer_changes(shared, second_destination, 10)),
        ],
    )
    assert reasons(votes) == ["insufficient_funds", "yes"]
    assert (await account_states(engine, [shared]))[shared]["transaction_lock"] == second


async def test_an_entry_busy_on_a_transfer_outside_the_batch_waits_for_its_release(engine):
    source, destination, other_source, other_destination = await open_accounts(engine, 100, 0, 100, 0)
    holder = uuid.uuid4()
    signals = ReleaseSignals()
    assert (await participant.prepare(engine, holder, transfer_changes(source, destination, 10))).yes
    waiting_id, free_id = uuid.uuid4(), uuid.uuid4()
    batch = asyncio.create_task(
        participant_batch.prepare_batch(
            engine,
            [
                entry(waiting_id, transfer_changes(source, destination, 20)),
                entry(free_id, transfer_changes(other_source, other_destination, 5)),
            ],
            busy_wait_s=30.0,
            signals=signals,
        )
    )
    give_up_at = time.monotonic() + ROUND_LIMIT_S
    while signals.waiting(source) == 0 and time.monotonic() < give_up_at:
        await asyncio.sleep(0.01)
    assert signals.waiting(source) == 1, "the busy entry queues on its accounts"
    assert (await account_states(engine, [other_source]))[other_source]["transaction_lock"] == free_id
    await participant.commit(engine, holder, signals=signals)
    assert reasons(await batch) == ["yes", "yes"]
    await participant_batch.commit_batch(engine, [decision(waiting_id), decision(free_id)], signals=signals)
    assert await balances(engine, source, destination, other_source, other_destination) == [70, 30, 95, 5]
    await assert_ledger_holds(engine, [source, destination, other_source, other_destination])


async def test_an_entry_still_busy_at_the_deadline_votes_no_and_leaves_a_tombstone(engine):
    source, destination = await open_accounts(engine, 100, 0)
    holder, late = uuid.uuid4(), uuid.uuid4()
    assert (await participant.prepare(engine, holder, transfer_changes(source, destination, 10))).yes
    votes = await participant_batch.prepare_batch(
        engine, [entry(late, transfer_changes(source, destination, 20))], busy_wait_s=FAST_BUSY_WAIT_S
    )
    assert reasons(votes) == ["account_busy"]
    rows = await log_rows(engine, late)
    assert {(row["state"], row["reason"]) for row in rows.values()} == {(ParticipantState.ABORTED, "account_busy")}
    await participant.commit(engine, holder)
    await assert_ledger_holds(engine, [source, destination])


async def test_a_newer_batch_leaves_an_account_to_an_older_waiter_so_waiting_batches_never_wait_in_a_cycle(engine):
    """Batch one waits for `hot` (held by a single prepare) holding `warm`; batch two wants both. Were batch two
    to take `hot` the moment it is free, each batch would wait for the other's commit, which comes only after
    its own answer: both would vote account_busy at the deadline. It queues behind batch one instead."""
    hot, warm, first_destination, second_destination, third_destination = await open_accounts(engine, 100, 100, 0, 0, 0)
    signals = ReleaseSignals()
    holder = uuid.uuid4()
    assert (await participant.prepare(engine, holder, transfer_changes(hot, first_destination, 1))).yes
    older = [
        entry(uuid.uuid4(), transfer_changes(hot, second_destination, 2)),
        entry(uuid.uuid4(), transfer_changes(warm, third_destination, 3)),
    ]
    started = time.monotonic()
    first_batch = asyncio.create_task(
        participant_batch.prepare_batch(engine, older, busy_wait_s=ROUND_LIMIT_S, signals=signals)
    )
    give_up_at = time.monotonic() + ROUND_LIMIT_S
    while signals.waiting(hot) == 0 and time.monotonic() < give_up_at:
        await asyncio.sleep(0.01)
    await participant.commit(engine, holder)  # released without a signal: the waiter finds out on its own clock
    newer = [
        entry(uuid.uuid4(), transfer_changes(hot, first_destination, 4)),
        entry(uuid.uuid4(), transfer_changes(warm, second_destination, 5)),
    ]
    second_batch = asyncio.create_task(
        participant_batch.prepare_batch(engine, newer, busy_wait_s=ROUND_LIMIT_S, signals=signals)
    )
    assert reasons(await first_batch) == ["yes", "yes"]
    await participant_batch.commit_batch(engine, [decision(item.transaction_id) for item in older], signals=signals)
    assert reasons(await second_batch) == ["yes", "yes"]
    assert time.monotonic() - started < AT_ONCE_S * 5, "no batch waited out its deadline"
    await participant_batch.commit_batch(engine, [decision(item.transaction_id) for item in newer], signals=signals)
    assert await balances(engine, hot, warm) == [93, 92]
    await assert_ledger_holds(engine, [hot, warm, first_destination, second_destination, third_destination])


# --- no deadlock -----------------------------------------------------------------------------------------------


async def _deadlocks(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        return (await connection.execute(_DEADLOCKS)).scalar_one()


async def _one_batch(engine: AsyncEngine, signals: ReleaseSignals, transfers: list[list[Leg]]) -> list[Vote]:
    """As a coordinator would: prepare the batch, then commit the YES transfers and abort the NO ones."""
    entries = [entry(uuid.uuid4(), changes) for changes in transfers]
    votes = await participant_batch.prepare_batch(engine, entries, busy_wait_s=0.5, signals=signals)
    yes = [decision(item.transaction_id) for item, vote in zip(entries, votes, strict=True) if vote.yes]
    no = [
        decision(item.transaction_id, list(item.legs))
        for item, vote in zip(entries, votes, strict=True)
        if not vote.yes
    ]
    if yes:
        assert all(result.acknowledged for result in await participant_batch.commit_batch(engine, yes, signals=signals))
    if no:
        assert all(result.acknowledged for result in await participant_batch.abort_batch(engine, no, signals=signals))
    return votes


async def test_concurrent_batches_over_the_same_accounts_in_opposite_orders_never_deadlock(engine):
    accounts = await open_accounts(engine, *([1000] * 6))
    signals = ReleaseSignals()
    deadlocks_before = await _deadlocks(engine)
    forward = [transfer_changes(accounts[index], accounts[index + 1], 7) for index in range(0, 6, 2)]
    backward = [transfer_changes(accounts[5 - index], accounts[4 - index], 3) for index in range(0, 6, 2)]
    crossing = [transfer_changes(accounts[1], accounts[2], 1), transfer_changes(accounts[3], accounts[0], 1)]
    committed = 0
    for _round in range(CONCURRENT_ROUNDS):
        batches = [_one_batch(engine, signals, transfers) for transfers in (forward, backward, crossing)]
        batches.append(_one_batch(engine, signals, list(reversed(crossing))))
        results = await asyncio.wait_for(asyncio.gather(*batches), ROUND_LIMIT_S)
        committed += sum(vote.yes for votes in results for vote in votes)
        for votes in results:
            assert all(vote.yes or vote.reason is VoteReason.ACCOUNT_BUSY for vote in votes)
    states = await account_states(engine, accounts)
    assert sum(state["balance"] for state in states.values()) == 6000, "transfers only move money"
    assert all(state["transaction_lock"] is None for state in states.values()), "no lock left behind"
    await assert_ledger_holds(engine, accounts)
    assert committed >= CONCURRENT_ROUNDS, "the batches made progress"
    await asyncio.sleep(STATS_FLUSH_S)
    assert await _deadlocks(engine) == deadlocks_before, "PostgreSQL never had to break a lock cycle"


async def test_aborts_racing_a_batch_prepare_leave_every_transfer_finished_one_way(engine):
    """A single abort writes its tombstones before it takes any row: a batch that read the log before
    a tombstone was committed loses the race (PB001) and runs its round again, seeing it."""
    accounts = await open_accounts(engine, *([100, 0] * 4))
    pairs = [(accounts[index], accounts[index + 1]) for index in range(0, 8, 2)]
    for _round in range(CONCURRENT_ROUNDS):
        entries = [entry(uuid.uuid4(), transfer_changes(source, destination, 1)) for source, destination in pairs]
        aborted = entries[1::2]
        votes, *_acknowledged = await asyncio.wait_for(
            asyncio.gather(
                participant_batch.prepare_batch(engine, entries),
                *(participant.abort(engine, item.transaction_id, list(item.legs)) for item in aborted),
            ),
            ROUND_LIMIT_S,
        )
        assert all(vote.yes or vote.reason is VoteReason.ALREADY_ABORTED for vote in votes)
        kept = [item for item in entries if item not in aborted]
        assert [vote.yes for vote in votes[::2]] == [True] * len(kept)
        results = await participant_batch.commit_batch(engine, [decision(item.transaction_id) for item in kept])
        assert all(result.acknowledged for result in results)
        for item in aborted:
            assert {row["state"] for row in (await log_rows(engine, item.transaction_id)).values()} == {
                ParticipantState.ABORTED
            }
    states = await account_states(engine, accounts)
    assert all(state["transaction_lock"] is None for state in states.values()), "no lock left behind"
    assert [states[source]["balance"] for source, _destination in pairs] == [80, 100, 80, 100]
    await assert_ledger_holds(engine, accounts)


# --- commit-batch and abort-batch ------------------------------------------------------------------------------


async def test_commit_batch_answers_each_transfer_on_its_own_and_a_repeat_the_same(engine):
    a, b, c, d = await open_accounts(engine, 100, 0, 100, 0)
    first, aborted, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert (await participant.prepare(engine, first, transfer_changes(a, b, 10))).yes
    assert (await participant.prepare(engine, aborted, transfer_changes(c, d, 20))).yes
    await participant.abort(engine, aborted, transfer_changes(c, d, 20))
    assert (await participant.prepare(engine, second, transfer_changes(c, d, 30))).yes
    batch = [decision(first), decision(aborted), decision(uuid.uuid4()), decision(second, transfer_changes(c, d, 30))]
    for _ in range(3):
        results = await participant_batch.commit_batch(engine, batch)
        assert [result.acknowledged for result in results] == [True, False, False, True]
        assert [result.error and result.error.code for result in results] == [
            None,
            "CONFLICT_ERROR",
            "CONFLICT_ERROR",
            None,
        ]
        assert await balances(engine, a, b, c, d) == [90, 10, 70, 30]
    assert {row["state"] for row in (await log_rows(engine, aborted)).values()} == {ParticipantState.ABORTED}
    states = await account_states(engine, [a, b, c, d])
    assert all(state["transaction_lock"] is None for state in states.values())
    await assert_ledger_holds(engine, [a, b, c, d])


async def test_the_same_commit_batch_twice_at_once_applies_each_transfer_once_and_never_deadlocks(engine):
    accounts = await open_accounts(engine, *([100, 0] * 10))
    pairs = [(accounts[index], accounts[index + 1]) for index in range(0, 20, 2)]
    deadlocks_before = await _deadlocks(engine)
    for _round in range(5):
        entries = [entry(uuid.uuid4(), transfer_changes(source, destination, 1)) for source, destination in pairs]
        assert all(vote.yes for vote in await participant_batch.prepare_batch(engine, entries))
        decisions = [decision(item.transaction_id) for item in entries]
        first, second = await asyncio.wait_for(
            asyncio.gather(
                participant_batch.commit_batch(engine, decisions),
                participant_batch.commit_batch(engine, list(reversed(decisions))),
            ),
            ROUND_LIMIT_S,
        )
        assert all(result.acknowledged for result in [*first, *second])
    assert [balance for balance in await balances(engine, *accounts)] == [95, 5] * 10
    await assert_ledger_holds(engine, accounts)
    await asyncio.sleep(STATS_FLUSH_S)
    assert await _deadlocks(engine) == deadlocks_before


async def test_abort_batch_answers_each_transfer_on_its_own_and_a_repeat_the_same(engine):
    a, b, c, d, e, f = await open_accounts(engine, 100, 0, 100, 0, 100, 0)
    prepared, committed, never_seen = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert (await participant.prepare(engine, prepared, transfer_changes(a, b, 10))).yes
    assert (await participant.prepare(engine, committed, transfer_changes(c, d, 20))).yes
    await participant.commit(engine, committed)
    committed_log = await log_rows(engine, committed)
    batch = [
        decision(prepared, transfer_changes(a, b, 10)),
        decision(committed, transfer_changes(c, d, 20)),
        decision(never_seen, transfer_changes(e, f, 30)),
    ]
    for _ in range(3):
        results = await participant_batch.abort_batch(engine, batch)
        assert [result.acknowledged for result in results] == [True, False, True]
        assert results[1].error is not None and results[1].error.code == "CONFLICT_ERROR"
    assert await log_rows(engine, committed) == committed_log, "a refused entry writes nothing"
    for transaction_id in (prepared, never_seen):
        assert {row["state"] for row in (await log_rows(engine, transaction_id)).values()} == {ParticipantState.ABORTED}
    late = await participant_batch.prepare_batch(engine, [entry(never_seen, transfer_changes(e, f, 30))])
    assert reasons(late) == ["already_aborted"], "a prepare after the abort finds the tombstone"
    states = await account_states(engine, [a, b, c, d, e, f])
    assert all(state["transaction_lock"] is None for state in states.values())
    assert await balances(engine, a, b, c, d, e, f) == [100, 0, 80, 20, 100, 0]
    await assert_ledger_holds(engine, [a, b, c, d, e, f])


async def test_abort_batch_without_named_legs_releases_every_leg_held_here(engine):
    source, destination = await open_accounts(engine, 100, 0)
    transaction_id = uuid.uuid4()
    assert reasons(
        await participant_batch.prepare_batch(
            engine, [entry(transaction_id, transfer_changes(source, destination, 10))]
        )
    ) == ["yes"]
    results = await participant_batch.abort_batch(engine, [decision(transaction_id)])
    assert [result.acknowledged for result in results] == [True]
    states = await account_states(engine, [source, destination])
    assert all(state["transaction_lock"] is None for state in states.values())
    assert {row["state"] for row in (await log_rows(engine, transaction_id)).values()} == {ParticipantState.ABORTED}
    commit = await participant_batch.commit_batch(engine, [decision(transaction_id)])
    assert [result.acknowledged for result in commit] == [False], "a commit of a transfer aborted here is refused"
