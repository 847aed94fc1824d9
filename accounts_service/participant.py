"""The two-phase-commit participant: prepare, commit, abort. Idempotent and order-proof (PROTOCOL.md).

Prepare and commit are each one statement (atomic by itself, one round trip); abort is one local
transaction. A prepared change is held on the account row (transaction_lock, pending_change) and
recorded in the participant log, so a repeat of any message finds its earlier answer there.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import db
from accounts_service.domain import (
    Leg,
    LegState,
    ParticipantState,
    Vote,
    VoteReason,
    balanced_legs,
    in_global_order,
    prepare_vote,
)
from shared.database import autocommit, constraint_of, sqlstate_of
from shared.errors import ConflictError, ValidationError

log = structlog.get_logger()

DEFAULT_PREPARE_BUSY_WAIT_S = 2.0
# A busy prepare waits for this process to release the account, or this long at most (a release by
# another replica is only seen by trying again). Retrying sooner would contend for the very rows
# the holder's commit needs.
BUSY_RETRY_S = 0.05
# Fresh-snapshot retries of one prepare statement whose write met a newer account row (_prepare_once).
STALE_RETRIES_MAX = 3
CHECK_VIOLATION = "23514"


# The most prepares that queue on one account for its release; a prepare beyond it still retries, on its own
# bounded pause, just without a place in the queue.
DEFAULT_WAITERS_PER_ACCOUNT_MAX = 1024


class WaitTicket:
    """One prepare's place in the queue of each account it waits on, kept across its retries (FIFO)."""

    __slots__ = ("account_ids", "turn")

    def __init__(self, account_ids: tuple[UUID, ...]) -> None:
        self.account_ids = account_ids
        self.turn = asyncio.Event()  # set: a release handed this prepare the turn, not yet taken


class ReleaseSignals:
    """Hands an account this process releases to the prepare that has waited on it longest (FIFO).

    A release wakes one waiter per account, not every waiter (no thundering herd): the oldest whose turn
    is not already pending. That waiter tries again; if it takes the lock, the next waiter sleeps on until
    the next release; if it does not (another leg still busy, or the lock went to a retry from elsewhere),
    it passes the turn on to the next waiter (`pass_on`). A release by another participant replica is not
    seen here; every waiter's bounded pause covers it.
    """

    def __init__(self, waiters_per_account_max: int = DEFAULT_WAITERS_PER_ACCOUNT_MAX) -> None:
        assert waiters_per_account_max > 0, "a queue holds at least one waiter"
        self._waiters_per_account_max = waiters_per_account_max
        # Insertion-ordered dicts as queues: oldest first, O(1) leave.
        self._queues: dict[UUID, dict[WaitTicket, None]] = {}

    def join(self, account_ids: list[UUID]) -> WaitTicket:
        ticket = WaitTicket(tuple(dict.fromkeys(account_ids)))
        for account_id in ticket.account_ids:
            queue = self._queues.setdefault(account_id, {})
            if len(queue) < self._waiters_per_account_max:
                queue[ticket] = None
        return ticket

    def leave(self, ticket: WaitTicket) -> None:
        if ticket.turn.is_set():  # handed a turn it will never take (it stopped, or was cancelled): pass it on
            self.pass_on(ticket, kept=())
        for account_id in ticket.account_ids:
            queue = self._queues.get(account_id)
            if queue is not None:
                queue.pop(ticket, None)
                if not queue:
                    del self._queues[account_id]

    async def wait(self, ticket: WaitTicket, timeout_s: float) -> bool:
        """Wait for a release to hand this ticket the turn, or timeout_s at most; whether it got the turn.

        A turn handed over while the prepare was still trying is not lost: the wait returns at once."""
        try:
            if not ticket.turn.is_set():
                await asyncio.wait_for(ticket.turn.wait(), timeout_s)
        except TimeoutError:
            pass
        got_turn = ticket.turn.is_set()
        ticket.turn.clear()  # taken: the next release on these accounts may hand it the turn again
        return got_turn

    def released(self, account_ids: list[UUID]) -> None:
        for account_id in account_ids:
            self._wake_oldest(account_id, skip=None)

    def pass_on(self, ticket: WaitTicket, *, kept: tuple[UUID, ...] | list[UUID] | set[UUID]) -> None:
        """The turn this ticket was handed (and could not use) goes to the next waiter on every account it did not lock."""
        for account_id in ticket.account_ids:
            if account_id not in kept:
                self._wake_oldest(account_id, skip=ticket)

    def queued_ahead(self, account_ids: set[UUID], ticket: WaitTicket | None) -> frozenset[UUID]:
        """Those of these accounts a prepare older than `ticket` (any, for one not queued) waits on here.

        A batch leaves such an account to that waiter even while it is free (FIFO): it then never waits on
        a younger batch's lock, so batches waiting with locks held never wait on each other in a cycle."""
        ahead = set()
        for account_id in account_ids:
            for queued in self._queues.get(account_id, {}):
                if queued is ticket:
                    break
                ahead.add(account_id)
                break
        return frozenset(ahead)

    def waiting(self, account_id: UUID) -> int:
        return len(self._queues.get(account_id, ()))

    def _wake_oldest(self, account_id: UUID, *, skip: WaitTicket | None) -> None:
        """Hand the turn to the oldest waiter without one pending; after `skip` when it is queued (passing on)."""
        queue = self._queues.get(account_id, {})
        behind = skip is None or skip not in queue
        for ticket in queue:
            if ticket is skip:
                behind = True
            elif behind and not ticket.turn.is_set():
                ticket.turn.set()
                return


NO_SIGNALS = ReleaseSignals()


async def prepare(
    engine: AsyncEngine,
    transaction_id: UUID,
    changes: list[Leg],
    *,
    busy_wait_s: float = DEFAULT_PREPARE_BUSY_WAIT_S,
    signals: ReleaseSignals = NO_SIGNALS,
) -> Vote:
    """Vote on a transfer's changes here; on a busy account, retry until busy_wait_s has passed.

    A NO vote leaves a tombstone, so this participant never votes YES on that transfer later.
    """
    ordered = in_global_order(changes)
    await _refuse_unbalanced(engine, transaction_id, ordered)
    vote = await _prepare_until_free(engine, transaction_id, ordered, busy_wait_s, signals)
    if not vote.yes and vote.reason is not VoteReason.ALREADY_ABORTED:
        assert vote.reason is not None, "a NO vote has a reason"
        await _leave_tombstones(engine, transaction_id, ordered, vote.reason)
    log.info(
        "participant_voted",
        transaction_id=str(transaction_id),
        details={
            "vote": "yes" if vote.yes else "no",
            "reason": vote.reason and vote.reason.value,
            "accounts": [str(change.account_id) for change in ordered],
        },
    )
    return vote


async def _prepare_until_free(
    engine: AsyncEngine, transaction_id: UUID, ordered: list[Leg], busy_wait_s: float, signals: ReleaseSignals
) -> Vote:
    """Prepare; on a busy account, wait in the accounts' FIFO queues and try again until busy_wait_s has passed."""
    deadline = time.monotonic() + busy_wait_s
    vote = await _prepare_once(engine, transaction_id, ordered)
    if vote.reason is not VoteReason.ACCOUNT_BUSY or time.monotonic() >= deadline:
        return vote
    ticket = signals.join([change.account_id for change in ordered])
    try:
        while vote.reason is VoteReason.ACCOUNT_BUSY and time.monotonic() < deadline:
            got_turn = await signals.wait(ticket, busy_pause_s(deadline))
            vote = await _prepare_once(engine, transaction_id, ordered)
            if got_turn and not vote.yes:
                signals.pass_on(ticket, kept=())
    finally:
        signals.leave(ticket)
    return vote


def busy_pause_s(deadline: float) -> float:
    """The next pause of a busy prepare: BUSY_RETRY_S, jittered, never past the deadline."""
    return max(min(BUSY_RETRY_S * random.uniform(0.5, 1.5), deadline - time.monotonic()), 0.0)


async def _refuse_unbalanced(engine: AsyncEngine, transaction_id: UUID, ordered: list[Leg]) -> None:
    """Defence in depth behind the coordinator key: legs held here for one transfer must sum to zero.

    A message naming both legs is checked as it is (the hot path: no query); a one-leg message is
    checked with the transfer's other live legs already recorded here, if any."""
    amounts = [change.change for change in ordered]
    if len(ordered) == 1:
        named = {change.account_id for change in ordered}
        amounts += [
            row["change"]
            for row in await transfer_state(engine, transaction_id)
            if row["account_id"] not in named and row["state"] != ParticipantState.ABORTED
        ]
    if not balanced_legs(amounts):
        log.warning(
            "prepare_unbalanced_refused",
            transaction_id=str(transaction_id),
            details={"accounts": [str(change.account_id) for change in ordered]},
        )
        raise ValidationError("the legs of a transfer must sum to zero", details={"field": "changes"})


async def _prepare_once(engine: AsyncEngine, transaction_id: UUID, ordered: list[Leg]) -> Vote:
    """One prepare statement (atomic by itself, so no explicit transaction): the vote it implies.

    The statement may meet a row written after its snapshot, and then changes nothing; the same statement
    with a fresh snapshot sees that row:
    - PB001: a log row of this transfer (an abort's tombstone, or the first prepare of a repeat, perhaps
      committed since). The retry votes what the log says. A transfer has one row per leg, so at most one
      retry per leg.
    - The balance CHECK refusing the write: a commit on one of its accounts landed after the snapshot.
      The statement checks the latest row it locked, but PostgreSQL checks constraints on the new row built
      from the snapshot's version before it follows the update to the latest one. A credit committed in
      between makes a change that fits the latest balance fail on the older one. After STALE_RETRIES_MAX
      such retries in a row, the account keeps changing under the prepare, and it votes NO account_busy.
    """
    stale = 0
    for _attempt in range(len(ordered) + STALE_RETRIES_MAX + 1):
        try:
            async with autocommit(engine).connect() as connection:
                rows = await db.prepare_legs(connection, transaction_id, ordered)
        except DBAPIError as error:
            if sqlstate_of(error) == db.RACE_LOST:
                log.info("prepare_met_a_newer_log_row", transaction_id=str(transaction_id))
                continue
            if not _checked_an_older_row(error):
                raise
            stale += 1
            log.info("prepare_met_a_newer_account_row", transaction_id=str(transaction_id))
            if stale > STALE_RETRIES_MAX:
                return Vote(yes=False, reason=VoteReason.ACCOUNT_BUSY)
            continue
        legs = [
            LegState(
                change,
                row["account_exists"],
                row["balance"],
                row["transaction_lock"],
                ParticipantState(row["earlier_state"]) if row["earlier_state"] else None,
            )
            for change, row in zip(ordered, rows, strict=True)
        ]
        return prepare_vote(legs, rows[0]["locked_legs"])
    raise AssertionError("a prepare met more new log rows than the transfer has legs")


def _checked_an_older_row(error: DBAPIError) -> bool:
    """The prepare's write refused by the balance CHECK: only possible on a snapshot's older row version,
    since the statement locks only legs whose latest row can take the change."""
    return sqlstate_of(error) == CHECK_VIOLATION and constraint_of(error) == db.BALANCE_CHECK_CONSTRAINT


async def _leave_tombstones(engine: AsyncEngine, transaction_id: UUID, ordered: list[Leg], reason: VoteReason) -> None:
    async with engine.begin() as connection:
        for change in ordered:
            await db.insert_tombstone(connection, transaction_id, change, reason.value)


async def commit(
    engine: AsyncEngine,
    transaction_id: UUID,
    account_ids: list[UUID] | None = None,
    *,
    signals: ReleaseSignals = NO_SIGNALS,
) -> list[dict[str, Any]]:
    """Apply this transfer's prepared changes (on the named accounts, or all of them here): one statement.

    A repeat is a no-op. A commit of a transfer aborted here (on any leg), or never prepared here, is
    refused, and the statement checks that before it applies anything (COMMIT_LEGS).
    """
    async with autocommit(engine).connect() as connection:
        rows = await db.commit_legs(connection, transaction_id, account_ids)
    if not rows:
        raise ConflictError("no prepared record of this transfer here", details={"transaction_id": str(transaction_id)})
    if rows[0]["aborted_here"]:
        assert all(row["balance_after"] is None for row in rows), "nothing is applied on an aborted transfer"
        raise ConflictError(
            "transfer was aborted here; it cannot commit", details={"transaction_id": str(transaction_id)}
        )
    signals.released([row["account_id"] for row in rows if row["balance_after"] is not None])
    for row in rows:
        if row["balance_after"] is not None:
            assert row["balance_after"] >= 0, "a committed balance is never negative"
            log.info(
                "participant_committed",
                transaction_id=str(transaction_id),
                details={
                    "account_id": str(row["account_id"]),
                    "change": str(row["change"]),
                    "balance": str(row["balance_after"]),
                },
            )
    return [
        {key: value for key, value in row.items() if key not in ("balance_after", "applied_all", "aborted_here")}
        for row in rows
    ]


async def abort(
    engine: AsyncEngine, transaction_id: UUID, changes: list[Leg], *, signals: ReleaseSignals = NO_SIGNALS
) -> list[dict[str, Any]]:
    """Release prepared changes and leave tombstones, also for legs whose prepare never arrived.

    With no changes named, every leg of the transfer held here is aborted (in-doubt resolution).
    """
    ordered = in_global_order(changes)
    async with engine.begin() as connection:
        # Tombstones first: inserting one waits for a prepare of the same leg that is still in flight,
        # so the release below (a new snapshot) sees that prepare if it committed, and a prepare that
        # comes later finds the tombstone and votes NO.
        for change in ordered:
            await db.insert_tombstone(connection, transaction_id, change, "coordinator_abort")
        account_ids = [change.account_id for change in ordered] or await db.select_transfer_accounts(
            connection, transaction_id
        )
        # Check the contradiction before acting on it: a transfer committed here on any leg is refused
        # before a single lock is released (the raise rolls the tombstones back too).
        logged = await db.select_transfer_log(connection, transaction_id)
        if any(row["state"] == ParticipantState.COMMITTED for row in logged):
            raise ConflictError(
                "transfer was committed here; it cannot abort", details={"transaction_id": str(transaction_id)}
            )
        decided = await db.mark_decided(connection, transaction_id, ParticipantState.ABORTED, account_ids)
        for account_id, _change in sorted(decided):  # account rows in account-id order, as everywhere
            released = await db.release_lock(connection, transaction_id, account_id)
            assert released, "a prepared change holds its account's lock until decided"
            log.info("participant_aborted", transaction_id=str(transaction_id), details={"account_id": str(account_id)})
        rows = _legs(await db.select_transfer_log(connection, transaction_id), account_ids)
    signals.released([account_id for account_id, _change in decided])
    if any(row["state"] == ParticipantState.COMMITTED for row in rows):  # only a commit racing this abort
        raise ConflictError(
            "transfer was committed here; it cannot abort", details={"transaction_id": str(transaction_id)}
        )
    return rows


def _legs(rows: list[dict[str, Any]], account_ids: list[UUID]) -> list[dict[str, Any]]:
    wanted = set(account_ids)
    return [row for row in rows if row["account_id"] in wanted]


async def transfer_state(engine: AsyncEngine, transaction_id: UUID) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return await db.select_transfer_log(connection, transaction_id)
