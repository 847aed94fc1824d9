"""The two-phase-commit participant: prepare, commit, abort. Idempotent and order-proof (PROTOCOL.md).

Each use case is one local transaction. A prepared change is held on the account row
(transaction_lock, pending_change) and recorded in the participant log, so a repeat of any message
finds its earlier answer there.
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import db
from accounts_service.domain import (VOTE_YES, Change, ParticipantState, Vote, VoteReason, in_global_order,
                                     refusal_reason, vote_from_log)
from shared.errors import ConflictError

log = structlog.get_logger()

DEFAULT_PREPARE_BUSY_WAIT_S = 2.0
BUSY_RETRY_FIRST_S = 0.002
BUSY_RETRY_MAX_S = 0.05


class _Refused(Exception):
    """Rolls the prepare transaction back: one leg could not be locked."""

    def __init__(self, reason: VoteReason) -> None:
        self.reason = reason


async def prepare(engine: AsyncEngine, transaction_id: UUID, changes: list[Change], *,
                  busy_wait_s: float = DEFAULT_PREPARE_BUSY_WAIT_S) -> Vote:
    """Vote on a transfer's changes here; on a busy account, retry until busy_wait_s has passed.

    A NO vote leaves a tombstone, so this participant never votes YES on that transfer later.
    """
    ordered = in_global_order(changes)
    deadline = time.monotonic() + busy_wait_s
    pause_s = BUSY_RETRY_FIRST_S
    while True:
        vote = await _prepare_once(engine, transaction_id, ordered)
        if vote.reason is not VoteReason.ACCOUNT_BUSY or time.monotonic() + pause_s > deadline:
            break
        await asyncio.sleep(pause_s * random.uniform(0.5, 1.5))
        pause_s = min(pause_s * 2, BUSY_RETRY_MAX_S)
    if not vote.yes and vote.reason is not VoteReason.ALREADY_ABORTED:
        await _leave_tombstones(engine, transaction_id, ordered, vote.reason)
    log.info("participant_voted", transaction_id=str(transaction_id),
             details={"vote": "yes" if vote.yes else "no", "reason": vote.reason and vote.reason.value,
                      "accounts": [str(change.account_id) for change in ordered]})
    return vote


async def _prepare_once(engine: AsyncEngine, transaction_id: UUID, ordered: list[Change]) -> Vote:
    try:
        async with engine.begin() as connection:
            states = await db.select_log_states(connection, transaction_id, [c.account_id for c in ordered])
            earlier_vote = vote_from_log(states, ordered)
            if earlier_vote is not None:
                return earlier_vote
            for change in ordered:
                if not await db.lock_for_transfer(connection, transaction_id, change):
                    raise _Refused(await _why_refused(connection, change))
                if not await db.insert_prepared(connection, transaction_id, change):
                    raise _Refused(VoteReason.ALREADY_ABORTED)
    except _Refused as refusal:
        return Vote(yes=False, reason=refusal.reason)
    return VOTE_YES


async def _why_refused(connection, change: Change) -> VoteReason:
    state = await db.select_lock_state(connection, change.account_id)
    if state is None:
        return refusal_reason(exists=False, locked=False)
    return refusal_reason(exists=True, locked=state["transaction_lock"] is not None,
                          affordable=state["balance"] + change.amount >= 0)


async def _leave_tombstones(engine: AsyncEngine, transaction_id: UUID, ordered: list[Change],
                            reason: VoteReason) -> None:
    async with engine.begin() as connection:
        for change in ordered:
            await db.insert_tombstone(connection, transaction_id, change, reason.value)


async def commit(engine: AsyncEngine, transaction_id: UUID, account_ids: list[UUID] | None = None
                 ) -> list[dict[str, Any]]:
    """Apply this transfer's prepared changes (on the named accounts, or all of them here).

    A repeat is a no-op; a commit after an abort, or of a transfer never prepared here, is refused.
    """
    async with engine.begin() as connection:
        account_ids = account_ids or await db.select_transfer_accounts(connection, transaction_id)
        for account_id, change in await db.mark_decided(connection, transaction_id, ParticipantState.COMMITTED,
                                                        account_ids):
            balance = await db.apply_commit(connection, transaction_id, account_id)
            assert balance is not None, "a prepared change holds its account's lock until decided"
            assert balance >= 0, "a committed balance is never negative"
            log.info("participant_committed", transaction_id=str(transaction_id),
                     details={"account_id": str(account_id), "change": str(change), "balance": str(balance)})
        rows = _legs(await db.select_transfer_log(connection, transaction_id), account_ids)
    if not rows:
        raise ConflictError("no prepared record of this transfer here",
                            details={"transaction_id": str(transaction_id)})
    if any(row["state"] == ParticipantState.ABORTED for row in rows):
        raise ConflictError("transfer was aborted here; it cannot commit",
                            details={"transaction_id": str(transaction_id)})
    return rows


async def abort(engine: AsyncEngine, transaction_id: UUID, changes: list[Change]) -> list[dict[str, Any]]:
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
        account_ids = ([change.account_id for change in ordered]
                       or await db.select_transfer_accounts(connection, transaction_id))
        for account_id, _change in await db.mark_decided(connection, transaction_id, ParticipantState.ABORTED,
                                                         account_ids):
            released = await db.release_lock(connection, transaction_id, account_id)
            assert released, "a prepared change holds its account's lock until decided"
            log.info("participant_aborted", transaction_id=str(transaction_id),
                     details={"account_id": str(account_id)})
        rows = _legs(await db.select_transfer_log(connection, transaction_id), account_ids)
    if any(row["state"] == ParticipantState.COMMITTED for row in rows):
        raise ConflictError("transfer was committed here; it cannot abort",
                            details={"transaction_id": str(transaction_id)})
    return rows


def _legs(rows: list[dict[str, Any]], account_ids: list[UUID]) -> list[dict[str, Any]]:
    wanted = set(account_ids)
    return [row for row in rows if row["account_id"] in wanted]


async def transfer_state(engine: AsyncEngine, transaction_id: UUID) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return await db.select_transfer_log(connection, transaction_id)
