"""The participant's batch routes: many transfers' prepares, commits or aborts in one message (PROTOCOL.md, Batches).

A batch is a transport, not a unit of atomicity: every transfer keeps its own vote and outcome, exactly as
the single routes in participant.py give them, but the batch pays one local transaction (a few statements)
for all of them instead of one round trip and one commit each.

Lock order, the same everywhere (so no two batches, nor a batch and a single prepare, wait in a cycle):
every account row of the batch in one statement, in account-id order, before any participant-log row.
PostgreSQL still breaks a cycle this order cannot rule out (a coordinator contradicting itself, or a
single abort, which writes its tombstones first) by aborting one transaction; a batch round it aborted
has written nothing, so it runs again from a fresh read, a bounded number of times.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import db
from accounts_service.domain import (
    BatchEntry,
    EntryPlan,
    Leg,
    LockedAccount,
    LoggedLeg,
    ParticipantState,
    PrepareAction,
    Vote,
    plan_prepare_batch,
)
from accounts_service.participant import (
    DEFAULT_PREPARE_BUSY_WAIT_S,
    NO_SIGNALS,
    ReleaseSignals,
    WaitTicket,
    busy_pause_s,
)
from shared.database import sqlstate_of
from shared.errors import ApiError, ConflictError, ServiceUnavailableError
from shared.hot_sql import raw_connection, raw_transaction

log = structlog.get_logger()

# The most transfers one batch message may carry (400 VALIDATION_ERROR above it, nothing written).
PARTICIPANT_BATCH_MAX = 256
# The body of a batch message at most: PARTICIPANT_BATCH_MAX entries of MAX_CHANGES_PER_PREPARE legs each
# come to about 340 KiB; a single route's body stays bounded by shared/params.MAX_BODY_BYTES (64 KiB).
PARTICIPANT_BATCH_BODY_MAX_BYTES = 512 * 1024
# How often one round of a batch runs again after losing a race (PB001) or a lock cycle (40P01) before the
# batch answers 503 (nothing of that round written; a repeat of the message is safe). Each PB001 follows a
# tombstone that appeared for one of its transfers, and the rerun sees every one committed by then: a
# burst of single aborts (a coordinator presuming a slow batch aborted) costs a few reruns, not one each.
BATCH_ROUND_ATTEMPTS = 8
_RERUN_SQLSTATES = frozenset({db.RACE_LOST, db.DEADLOCK_DETECTED})


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    """One transfer of a commit-batch or abort-batch: the legs it names here (none: every leg held here)."""

    transaction_id: UUID
    legs: tuple[Leg, ...]


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """One transfer's answer in a commit-batch or abort-batch: acknowledged, or the single route's error."""

    transaction_id: UUID
    error: ApiError | None = None

    @property
    def acknowledged(self) -> bool:
        return self.error is None


def check_batch(transaction_ids: list[UUID]) -> None:
    """What the handler validated, asserted again where money moves: a bounded batch, one entry per transfer."""
    assert 0 < len(transaction_ids) <= PARTICIPANT_BATCH_MAX, "a batch holds 1 to PARTICIPANT_BATCH_MAX transfers"
    assert len(set(transaction_ids)) == len(transaction_ids), "one entry per transfer"


async def _run_round(engine: AsyncEngine, work: Any, *, what: str, one_statement: bool = False) -> Any:
    """`work(connection)` in one local transaction (one_statement: the work is a single statement, atomic on
    its own, so no BEGIN/COMMIT round trips), again from scratch when it lost a race or a lock cycle."""
    for attempt in range(BATCH_ROUND_ATTEMPTS):
        try:
            async with raw_connection(engine) if one_statement else raw_transaction(engine) as connection:
                return await work(connection)
        except asyncpg.PostgresError as error:
            if sqlstate_of(error) not in _RERUN_SQLSTATES:
                raise
            log.info("batch_round_rerun", details={"batch": what, "sqlstate": sqlstate_of(error), "attempt": attempt})
    log.warning("batch_round_gave_up", details={"batch": what, "attempts": BATCH_ROUND_ATTEMPTS})
    raise ServiceUnavailableError(f"{what} kept losing races; nothing of its last round was written, send it again")


# --- prepare ---------------------------------------------------------------------------------------------------


async def prepare_batch(
    engine: AsyncEngine,
    entries: list[BatchEntry],
    *,
    busy_wait_s: float = DEFAULT_PREPARE_BUSY_WAIT_S,
    signals: ReleaseSignals = NO_SIGNALS,
) -> list[Vote]:
    """Vote on each transfer, all-or-nothing per transfer, in message order; one local transaction per round.

    A round locks every account row of the batch (one statement, account-id order), reads the log of all
    its transfers, plans each entry (domain.plan_prepare_batch: the earlier entry gets an account two
    entries share, the later votes NO account_busy at once), then writes every lock and tombstone in one
    statement. An entry busy on a transfer outside this message is retried by the participant itself, in
    the FIFO queue of its accounts, until busy_wait_s has passed (as a single prepare is); its last round
    leaves the tombstone of a final NO. The other entries' votes stand from the round that decided them.
    Logs one `participant_voted` line per transfer.
    """
    check_batch([entry.transaction_id for entry in entries])
    in_message = frozenset(entry.transaction_id for entry in entries)
    deadline = time.monotonic() + busy_wait_s
    votes: dict[UUID, Vote] = {}
    waiting = entries
    ticket: WaitTicket | None = None
    try:
        while waiting:
            got_turn = ticket is not None and await signals.wait(ticket, busy_pause_s(deadline))
            may_retry = time.monotonic() < deadline
            # Accounts an older prepare queues for are its turn, not ours (FIFO); at the deadline take any free one.
            wanted = {leg.account_id for entry in waiting for leg in entry.legs}
            queued = signals.queued_ahead(wanted, ticket) if may_retry else frozenset()
            plans = await _prepare_round(engine, waiting, in_message, may_retry, queued)
            votes.update((entry.transaction_id, plan.vote) for entry, plan in zip(waiting, plans, strict=True))
            if got_turn and ticket is not None:
                signals.pass_on(ticket, kept=_locked_accounts(waiting, plans))
            waiting = [entry for entry, plan in zip(waiting, plans, strict=True) if plan.action is PrepareAction.RETRY]
            if waiting and ticket is None:
                ticket = signals.join([leg.account_id for entry in waiting for leg in entry.legs])
    finally:
        if ticket is not None:
            signals.leave(ticket)
    for entry in entries:
        _log_vote(entry, votes[entry.transaction_id])
    return [votes[entry.transaction_id] for entry in entries]


async def prepare_riders(
    engine: AsyncEngine, entries: list[BatchEntry], *, signals: ReleaseSignals = NO_SIGNALS
) -> list[Vote | None]:
    """The prepares riding a decision message: one round, no waiting; a vote each, or None (deferred).

    An entry busy on a transfer outside the message, or on an account an older prepare queues for here, is
    deferred: nothing is written for it, and the coordinator sends it again as a prepare of its own. So a
    decision message's answer never waits for a lock its coordinator did not know of (another replica's):
    with one batch of a step in flight, every decision to this participant would wait behind it.
    """
    check_batch([entry.transaction_id for entry in entries])
    in_message = frozenset(entry.transaction_id for entry in entries)
    queued = signals.queued_ahead({leg.account_id for entry in entries for leg in entry.legs}, None)
    plans = await _prepare_round(engine, entries, in_message, True, queued)
    votes = [None if plan.action is PrepareAction.RETRY else plan.vote for plan in plans]
    for entry, vote in zip(entries, votes, strict=True):
        if vote is not None:
            _log_vote(entry, vote)
    return votes


def _locked_accounts(entries: list[BatchEntry], plans: list[EntryPlan]) -> set[UUID]:
    return {
        leg.account_id
        for entry, plan in zip(entries, plans, strict=True)
        if plan.action is PrepareAction.LOCK
        for leg in entry.legs
    }


async def _prepare_round(
    engine: AsyncEngine,
    entries: list[BatchEntry],
    in_message: frozenset[UUID],
    may_retry: bool,
    queued: frozenset[UUID],
) -> list[EntryPlan]:
    async def work(connection: asyncpg.Connection) -> list[EntryPlan]:
        account_ids = sorted({leg.account_id for entry in entries for leg in entry.legs})
        rows = await db.lock_accounts(connection, account_ids)
        accounts = {key: LockedAccount(row["balance"], row["transaction_lock"]) for key, row in rows.items()}
        logged: dict[UUID, list[LoggedLeg]] = {}
        for row in await db.select_batch_log(connection, [entry.transaction_id for entry in entries]):
            leg = LoggedLeg(row["account_id"], ParticipantState(row["state"]), row["change"])
            logged.setdefault(row["transaction_id"], []).append(leg)
        plans = plan_prepare_batch(entries, accounts, logged, in_message=in_message, may_retry=may_retry, queued=queued)
        writes = _prepare_writes(entries, plans)
        if writes:
            await db.write_prepare_batch(connection, writes)
        return plans

    result: list[EntryPlan] = await _run_round(engine, work, what="prepare-batch")
    return result


def _prepare_writes(
    entries: list[BatchEntry], plans: list[EntryPlan]
) -> list[tuple[UUID, UUID, Decimal, ParticipantState, str | None]]:
    writes = []
    for entry, plan in zip(entries, plans, strict=True):
        if plan.action is PrepareAction.LOCK:
            state, reason = ParticipantState.PREPARED, None
        elif plan.action is PrepareAction.TOMBSTONE:
            assert plan.vote.reason is not None, "a NO vote has a reason"
            state, reason = ParticipantState.ABORTED, plan.vote.reason.value
        else:
            continue
        writes += [(entry.transaction_id, leg.account_id, leg.change, state, reason) for leg in entry.legs]
    return writes


def _log_vote(entry: BatchEntry, vote: Vote) -> None:
    log.info(
        "participant_voted",
        transaction_id=str(entry.transaction_id),
        details={
            "vote": "yes" if vote.yes else "no",
            "reason": vote.reason and vote.reason.value,
            "accounts": [str(leg.account_id) for leg in entry.legs],
            "batch": True,
        },
    )


# --- commit ----------------------------------------------------------------------------------------------------


async def commit_batch(
    engine: AsyncEngine, entries: list[DecisionEntry], *, signals: ReleaseSignals = NO_SIGNALS
) -> list[DecisionResult]:
    """Commit each transfer as participant.commit does alone, all in one statement; one result per entry.

    Per entry: a repeat is acknowledged again; a transfer aborted here (on any leg) or never prepared here
    is refused (CONFLICT_ERROR) and nothing of it is applied; the others are not affected. Logs one line for
    the batch (counts), and a warning per refused entry.
    """
    check_batch([entry.transaction_id for entry in entries])
    pairs: list[tuple[UUID, UUID | None]] = []
    for entry in entries:
        pairs += [(entry.transaction_id, leg.account_id) for leg in entry.legs] or [(entry.transaction_id, None)]

    async def work(connection: asyncpg.Connection) -> list[dict[str, Any]]:
        return await db.commit_batch(connection, pairs)

    rows: list[dict[str, Any]] = await _run_round(engine, work, what="commit-batch", one_statement=True)
    signals.released([row["account_id"] for row in rows if row["balance_after"] is not None])
    assert all(row["balance_after"] >= 0 for row in rows if row["balance_after"] is not None), "never negative"
    by_transfer: dict[UUID, list[dict[str, Any]]] = {}
    for row in rows:
        by_transfer.setdefault(row["transaction_id"], []).append(row)
    results = [_commit_result(entry.transaction_id, by_transfer.get(entry.transaction_id, [])) for entry in entries]
    _log_decisions("commit", results)
    return results


def _commit_result(transaction_id: UUID, rows: list[dict[str, Any]]) -> DecisionResult:
    details = {"transaction_id": str(transaction_id)}
    if not rows:
        return DecisionResult(
            transaction_id, ConflictError("no prepared record of this transfer here", details=details)
        )
    if rows[0]["aborted_here"]:
        assert all(row["balance_after"] is None for row in rows), "nothing is applied on an aborted transfer"
        return DecisionResult(
            transaction_id, ConflictError("transfer was aborted here; it cannot commit", details=details)
        )
    return DecisionResult(transaction_id)


# --- abort -----------------------------------------------------------------------------------------------------


async def abort_batch(
    engine: AsyncEngine, entries: list[DecisionEntry], *, signals: ReleaseSignals = NO_SIGNALS
) -> list[DecisionResult]:
    """Abort each transfer as participant.abort does alone, in one local transaction; one result per entry.

    The transaction takes its account rows first (named, and every one its transfers hold here; account-id
    order), reads the log, refuses each transfer committed here on any leg before acting on it (nothing of
    that entry is written), then for the others leaves tombstones on the named legs never prepared here,
    marks the prepared legs aborted and releases their locks, all in one statement. A repeat is
    acknowledged again. Logs one line for the batch (counts), and a warning per refused entry.
    """
    check_batch([entry.transaction_id for entry in entries])
    transaction_ids = [entry.transaction_id for entry in entries]

    async def work(connection: asyncpg.Connection) -> tuple[list[DecisionResult], list[UUID]]:
        named = sorted({leg.account_id for entry in entries for leg in entry.legs})
        await db.lock_abort_accounts(connection, named, transaction_ids)
        logged: dict[UUID, dict[UUID, ParticipantState]] = {}
        for row in await db.select_batch_log(connection, transaction_ids):
            logged.setdefault(row["transaction_id"], {})[row["account_id"]] = ParticipantState(row["state"])
        results, tombstones, pairs = _plan_aborts(entries, logged)
        released = await db.write_abort_batch(connection, tombstones, pairs) if tombstones or pairs else []
        return results, released

    results, released = await _run_round(engine, work, what="abort-batch")
    signals.released(released)
    _log_decisions("abort", results)
    return results


def _plan_aborts(
    entries: list[DecisionEntry], logged: dict[UUID, dict[UUID, ParticipantState]]
) -> tuple[list[DecisionResult], list[tuple[UUID, UUID, Decimal]], list[tuple[UUID, UUID | None]]]:
    """Per entry: refused (committed here), or its tombstones (named legs with no log row) and legs to abort."""
    results: list[DecisionResult] = []
    tombstones: list[tuple[UUID, UUID, Decimal]] = []
    pairs: list[tuple[UUID, UUID | None]] = []
    for entry in entries:
        states = logged.get(entry.transaction_id, {})
        if ParticipantState.COMMITTED in states.values():
            error = ConflictError(
                "transfer was committed here; it cannot abort", details={"transaction_id": str(entry.transaction_id)}
            )
            results.append(DecisionResult(entry.transaction_id, error))
            continue
        results.append(DecisionResult(entry.transaction_id))
        tombstones += [
            (entry.transaction_id, leg.account_id, leg.change) for leg in entry.legs if leg.account_id not in states
        ]
        account_ids = [leg.account_id for leg in entry.legs] or sorted(states)
        pairs += [
            (entry.transaction_id, account_id)
            for account_id in account_ids
            if states.get(account_id) is ParticipantState.PREPARED
        ]
    return results, tombstones, pairs


def _log_decisions(decision: str, results: list[DecisionResult]) -> None:
    refused = [result for result in results if result.error is not None]
    for result in refused:
        assert result.error is not None
        log.warning(
            f"participant_{decision}_refused",
            transaction_id=str(result.transaction_id),
            details={"code": result.error.code, "message": result.error.message},
        )
    log.info(f"participant_batch_{decision}", details={"transfers": len(results), "refused": len(refused)})
