"""domain.plan_prepare_batch: the pure rules of a batch prepare, every branch, and properties over random batches."""

from __future__ import annotations

import uuid
from decimal import Decimal
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from accounts_service.domain import (
    BatchEntry,
    Leg,
    LockedAccount,
    LoggedLeg,
    ParticipantState,
    PrepareAction,
    VoteReason,
    in_global_order,
    plan_prepare_batch,
)

FREE = LockedAccount(Decimal(100), None)


def entry(transaction_id: UUID, *legs: tuple[UUID, int]) -> BatchEntry:
    return BatchEntry(
        transaction_id, tuple(in_global_order([Leg(account, Decimal(change)) for account, change in legs]))
    )


def plan(entries, accounts, logged=None, *, may_retry=True, queued=frozenset()):
    in_message = frozenset(item.transaction_id for item in entries)
    plans = plan_prepare_batch(
        entries, accounts, logged or {}, in_message=in_message, may_retry=may_retry, queued=queued
    )
    return [(item.vote.reason.value if item.vote.reason else "yes", item.action) for item in plans]


def test_each_entry_gets_the_single_routes_vote():
    a, b, c, d, poor, missing = (uuid.uuid4() for _ in range(6))
    accounts = {a: FREE, b: FREE, c: FREE, d: FREE, poor: LockedAccount(Decimal(5), None)}
    entries = [
        entry(uuid.uuid4(), (a, -10), (b, 10)),
        entry(uuid.uuid4(), (poor, -10), (c, 10)),
        entry(uuid.uuid4(), (d, -1), (missing, 1)),
        entry(uuid.uuid4(), (c, -1), (d, 2)),
    ]
    assert plan(entries, accounts) == [
        ("yes", PrepareAction.LOCK),
        ("insufficient_funds", PrepareAction.TOMBSTONE),
        ("account_not_found", PrepareAction.TOMBSTONE),
        ("invalid_legs", PrepareAction.NOTHING),
    ]


def test_the_log_answers_a_repeat():
    a, b = uuid.uuid4(), uuid.uuid4()
    prepared, tombstoned, partial = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    logged = {
        prepared: [
            LoggedLeg(a, ParticipantState.COMMITTED, Decimal(-1)),
            LoggedLeg(b, ParticipantState.COMMITTED, Decimal(1)),
        ],
        tombstoned: [LoggedLeg(a, ParticipantState.ABORTED, Decimal(-1))],
        partial: [LoggedLeg(a, ParticipantState.COMMITTED, Decimal(-1))],
    }
    entries = [entry(transaction_id, (a, -1), (b, 1)) for transaction_id in (prepared, tombstoned, partial)]
    assert plan(entries, {a: FREE, b: FREE}, logged) == [
        ("yes", PrepareAction.NOTHING),
        ("already_aborted", PrepareAction.NOTHING),
        ("account_busy", PrepareAction.TOMBSTONE),  # half logged already: never locked twice
    ]


def test_two_entries_on_one_account_the_earlier_takes_it_and_the_later_votes_at_once():
    shared, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    entries = [entry(uuid.uuid4(), (shared, -1), (b, 1)), entry(uuid.uuid4(), (shared, -1), (c, 1))]
    accounts = {shared: FREE, b: FREE, c: FREE}
    assert plan(entries, accounts) == [("yes", PrepareAction.LOCK), ("account_busy", PrepareAction.TOMBSTONE)]


def test_busy_outside_the_message_is_retried_until_the_deadline():
    a, b = uuid.uuid4(), uuid.uuid4()
    accounts = {a: LockedAccount(Decimal(100), uuid.uuid4()), b: FREE}
    entries = [entry(uuid.uuid4(), (a, -1), (b, 1))]
    assert plan(entries, accounts) == [("account_busy", PrepareAction.RETRY)]
    assert plan(entries, accounts, may_retry=False) == [("account_busy", PrepareAction.TOMBSTONE)]


def test_an_account_an_older_prepare_queues_for_is_left_to_it():
    a, b = uuid.uuid4(), uuid.uuid4()
    entries = [entry(uuid.uuid4(), (a, -1), (b, 1))]
    assert plan(entries, {a: FREE, b: FREE}, queued=frozenset({a})) == [("account_busy", PrepareAction.RETRY)]


def test_busy_on_a_transfer_of_the_same_message_is_never_retried():
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    repeated = uuid.uuid4()
    logged = {
        repeated: [
            LoggedLeg(a, ParticipantState.PREPARED, Decimal(-1)),
            LoggedLeg(b, ParticipantState.PREPARED, Decimal(1)),
        ]
    }
    accounts = {a: LockedAccount(Decimal(100), repeated), b: LockedAccount(Decimal(0), repeated), c: FREE}
    entries = [entry(repeated, (a, -1), (b, 1)), entry(uuid.uuid4(), (a, -1), (c, 1))]
    assert plan(entries, accounts, logged) == [
        ("yes", PrepareAction.NOTHING),
        ("account_busy", PrepareAction.TOMBSTONE),
    ]


ACCOUNTS = [uuid.UUID(int=index + 1) for index in range(6)]


@st.composite
def batches(draw):
    accounts = {
        account: LockedAccount(
            Decimal(draw(st.integers(0, 20))), draw(st.sampled_from([None, None, uuid.UUID(int=999)]))
        )
        for account in draw(st.lists(st.sampled_from(ACCOUNTS), unique=True, min_size=2))
    }
    entries = []
    for _ in range(draw(st.integers(1, 8))):
        source, destination = draw(st.lists(st.sampled_from(ACCOUNTS), unique=True, min_size=2, max_size=2))
        amount = draw(st.integers(1, 15))
        entries.append(entry(uuid.uuid4(), (source, -amount), (destination, amount)))
    queued = frozenset(draw(st.lists(st.sampled_from(ACCOUNTS), max_size=2)))
    return entries, accounts, queued, draw(st.booleans())


@given(batches())
def test_no_account_is_locked_twice_and_a_lock_is_only_taken_free_and_affordable(case):
    entries, accounts, queued, may_retry = case
    in_message = frozenset(item.transaction_id for item in entries)
    plans = plan_prepare_batch(entries, accounts, {}, in_message=in_message, may_retry=may_retry, queued=queued)
    locked: set[UUID] = set()
    for item, planned in zip(entries, plans, strict=True):
        assert planned.vote.yes == (planned.action is PrepareAction.LOCK)
        if planned.action is PrepareAction.RETRY:
            assert may_retry and planned.vote.reason is VoteReason.ACCOUNT_BUSY
        if planned.action is not PrepareAction.LOCK:
            continue
        for leg in item.legs:
            assert leg.account_id not in locked, "the lock is one transfer's"
            assert leg.account_id in accounts and accounts[leg.account_id].locked_by is None
            assert accounts[leg.account_id].balance + leg.change >= 0, "never below zero"
            assert not may_retry or leg.account_id not in queued
            locked.add(leg.account_id)
