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
from shared.database import autocommit, sqlstate_of
from shared.errors import ConflictError, ValidationError

log = structlog.get_logger()

DEFAULT_PREPARE_BUSY_WAIT_S = 2.0
# A busy prepare waits for this process to release the account, or this long at most (a release by
# another replica is only seen by trying again). Retrying sooner would contend for the very rows
# the holder's commit needs.
BUSY_RETRY_S = 0.05


class ReleaseSignals:
    """Wakes prepares waiting on a busy account the moment this process releases it.

    A release by another participant replica is not seen here; the waiter's bounded pause covers it.
    """

    def __init__(self) -> None:
        self._waiting: dict[UUID, set[asyncio.Event]] = {}

    async def wait(self, account_ids: list[UUID], timeout_s: float) -> None:
        event = asyncio.Event()
        for account_id in account_ids:
            self._waiting.setdefault(account_id, set()).add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            for account_id in account_ids:
                waiters = self._waiting.get(account_id)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiting[account_id]

    def released(self, account_ids: list[UUID]) -> None:
        for account_id in account_ids:
            for event in self._waiting.pop(account_id, ()):
                event.set()


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
    deadline = time.monotonic() + busy_wait_s
    while True:
        vote = await _prepare_once(engine, transaction_id, ordered)
        if vote.reason is not VoteReason.ACCOUNT_BUSY or time.monotonic() >= deadline:
            break
        pause_s = min(BUSY_RETRY_S * random.uniform(0.5, 1.5), deadline - time.monotonic())
        await signals.wait([change.account_id for change in ordered], max(pause_s, 0.0))
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

    PB001 means a log row of this transfer was written after the statement's snapshot: an abort's
    tombstone, or the first prepare of a repeat (perhaps committed since). The statement changed
    nothing; the same statement with a fresh snapshot sees that row and votes what the log says
    (tombstone: NO; prepared or committed: YES again). Each retry follows a row that appeared, and a
    transfer has one row per leg, so the retries are bounded by the legs.
    """
    for _attempt in range(len(ordered) + 1):
        try:
            async with autocommit(engine).connect() as connection:
                rows = await db.prepare_legs(connection, transaction_id, ordered)
        except DBAPIError as error:
            if sqlstate_of(error) != db.RACE_LOST:
                raise
            log.info("prepare_met_a_newer_log_row", transaction_id=str(transaction_id))
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
