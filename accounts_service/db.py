"""Queries on the accounts database: accounts rows and the participant log. Every function takes a connection."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from accounts_service.domain import Change, LedgerKind, ParticipantState

ACCOUNT_COLUMNS = ("account_id, customer_id, balance, transaction_lock, pending_change, locked_at, "
                   "created_at, updated_at")

_INSERT_ACCOUNT = text(f"""
    INSERT INTO accounts (account_id, customer_id, balance) VALUES (:account_id, :customer_id, :balance)
    RETURNING {ACCOUNT_COLUMNS}""")
_SELECT_ACCOUNT = text(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = :account_id")
_SELECT_ACCOUNT_FOR_UPDATE = text(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = :account_id FOR UPDATE")
_SELECT_CUSTOMER_ACCOUNTS = text(f"""
    SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE customer_id = :customer_id ORDER BY created_at, account_id""")
_SET_BALANCE = text(f"""
    UPDATE accounts SET balance = :balance, updated_at = now() WHERE account_id = :account_id
    RETURNING {ACCOUNT_COLUMNS}""")
_INSERT_LEDGER_ROW = text("""
    INSERT INTO participant_log (transaction_id, account_id, state, change, kind, reason)
    VALUES (:transaction_id, :account_id, :state, :change, :kind, :reason)""")
_SELECT_LEDGER = text("""
    SELECT transaction_id, account_id, change, kind, created_at, updated_at FROM participant_log
    WHERE account_id = :account_id AND state = 'committed'
    ORDER BY updated_at DESC, transaction_id LIMIT :limit OFFSET :offset""")

# The prepare: check and lock in one statement, never check-then-lock.
_LOCK_FOR_TRANSFER = text("""
    UPDATE accounts SET transaction_lock = :transaction_id, pending_change = :change, locked_at = now(),
                        updated_at = now()
    WHERE account_id = :account_id AND transaction_lock IS NULL AND balance + :change >= 0
    RETURNING account_id""")
_SELECT_LOCK_STATE = text("SELECT transaction_lock, balance FROM accounts WHERE account_id = :account_id")
_SELECT_LOG_STATES = text("""
    SELECT account_id, state FROM participant_log
    WHERE transaction_id = :transaction_id AND account_id = ANY(:account_ids)""")
_SELECT_TRANSFER_LOG = text("""
    SELECT transaction_id, account_id, state, change, kind, reason, created_at, updated_at FROM participant_log
    WHERE transaction_id = :transaction_id ORDER BY account_id""")
_INSERT_PREPARED = text("""
    INSERT INTO participant_log (transaction_id, account_id, state, change, kind)
    VALUES (:transaction_id, :account_id, 'prepared', :change, 'transfer')
    ON CONFLICT (transaction_id, account_id) DO NOTHING
    RETURNING account_id""")
_INSERT_TOMBSTONE = text("""
    INSERT INTO participant_log (transaction_id, account_id, state, change, kind, reason)
    VALUES (:transaction_id, :account_id, 'aborted', :change, 'transfer', :reason)
    ON CONFLICT (transaction_id, account_id) DO NOTHING""")
_MARK_DECIDED = text("""
    UPDATE participant_log SET state = :state, updated_at = now()
    WHERE transaction_id = :transaction_id AND account_id = ANY(:account_ids) AND state = 'prepared'
    RETURNING account_id, change""")
_SELECT_TRANSFER_ACCOUNTS = text("SELECT account_id FROM participant_log WHERE transaction_id = :transaction_id")
_SELECT_IN_DOUBT = text("""
    SELECT DISTINCT transaction_lock FROM accounts
    WHERE transaction_lock IS NOT NULL AND locked_at < now() - make_interval(secs => :in_doubt_s)
    LIMIT :limit""")
_COUNT_LOCKS = text("""
    SELECT count(*) AS locked, count(*) FILTER (WHERE locked_at < now() - make_interval(secs => :in_doubt_s))
           AS in_doubt
    FROM accounts WHERE transaction_lock IS NOT NULL""")
_PURGE_TOMBSTONES = text("""
    DELETE FROM participant_log WHERE ctid IN (
        SELECT ctid FROM participant_log
        WHERE state = 'aborted' AND kind = 'transfer' AND updated_at < now() - make_interval(secs => :retention_s)
        LIMIT :limit)""")
_APPLY_COMMIT = text("""
    UPDATE accounts SET balance = balance + pending_change, transaction_lock = NULL, pending_change = NULL,
                        locked_at = NULL, updated_at = now()
    WHERE account_id = :account_id AND transaction_lock = :transaction_id
    RETURNING balance""")
_RELEASE_LOCK = text("""
    UPDATE accounts SET transaction_lock = NULL, pending_change = NULL, locked_at = NULL, updated_at = now()
    WHERE account_id = :account_id AND transaction_lock = :transaction_id
    RETURNING account_id""")


def _row(result_row: Any) -> dict[str, Any] | None:
    return dict(result_row._mapping) if result_row is not None else None


async def insert_account(connection: AsyncConnection, account_id: UUID, customer_id: UUID,
                         balance: Decimal) -> dict[str, Any]:
    result = await connection.execute(_INSERT_ACCOUNT, {"account_id": account_id, "customer_id": customer_id,
                                                        "balance": balance})
    return _row(result.one())


async def select_account(connection: AsyncConnection, account_id: UUID, *, for_update: bool = False
                         ) -> dict[str, Any] | None:
    statement = _SELECT_ACCOUNT_FOR_UPDATE if for_update else _SELECT_ACCOUNT
    return _row((await connection.execute(statement, {"account_id": account_id})).first())


async def select_customer_accounts(connection: AsyncConnection, customer_id: UUID) -> list[dict[str, Any]]:
    result = await connection.execute(_SELECT_CUSTOMER_ACCOUNTS, {"customer_id": customer_id})
    return [dict(row._mapping) for row in result]


async def set_balance(connection: AsyncConnection, account_id: UUID, balance: Decimal) -> dict[str, Any]:
    result = await connection.execute(_SET_BALANCE, {"account_id": account_id, "balance": balance})
    return _row(result.one())


async def insert_ledger_row(connection: AsyncConnection, *, transaction_id: UUID, account_id: UUID,
                            change: Decimal, kind: LedgerKind, reason: str | None = None) -> None:
    await connection.execute(_INSERT_LEDGER_ROW, {
        "transaction_id": transaction_id, "account_id": account_id, "state": ParticipantState.COMMITTED.value,
        "change": change, "kind": kind.value, "reason": reason})


async def select_ledger(connection: AsyncConnection, account_id: UUID, limit: int, offset: int
                        ) -> list[dict[str, Any]]:
    result = await connection.execute(_SELECT_LEDGER, {"account_id": account_id, "limit": limit, "offset": offset})
    return [dict(row._mapping) for row in result]


async def lock_for_transfer(connection: AsyncConnection, transaction_id: UUID, change: Change) -> bool:
    result = await connection.execute(_LOCK_FOR_TRANSFER, {
        "transaction_id": transaction_id, "account_id": change.account_id, "change": change.amount})
    return result.first() is not None


async def select_lock_state(connection: AsyncConnection, account_id: UUID) -> dict[str, Any] | None:
    """The account's lock and balance, or None when there is no such account."""
    return _row((await connection.execute(_SELECT_LOCK_STATE, {"account_id": account_id})).first())


async def select_log_states(connection: AsyncConnection, transaction_id: UUID, account_ids: list[UUID]
                            ) -> dict[UUID, ParticipantState]:
    result = await connection.execute(_SELECT_LOG_STATES, {"transaction_id": transaction_id,
                                                           "account_ids": account_ids})
    return {row.account_id: ParticipantState(row.state) for row in result}


async def select_transfer_log(connection: AsyncConnection, transaction_id: UUID) -> list[dict[str, Any]]:
    result = await connection.execute(_SELECT_TRANSFER_LOG, {"transaction_id": transaction_id})
    return [dict(row._mapping) for row in result]


async def insert_prepared(connection: AsyncConnection, transaction_id: UUID, change: Change) -> bool:
    """Record the prepared leg; False when a tombstone for it was committed meanwhile (an abort won the race)."""
    result = await connection.execute(_INSERT_PREPARED, {
        "transaction_id": transaction_id, "account_id": change.account_id, "change": change.amount})
    return result.first() is not None


async def insert_tombstone(connection: AsyncConnection, transaction_id: UUID, change: Change, reason: str) -> None:
    await connection.execute(_INSERT_TOMBSTONE, {"transaction_id": transaction_id, "account_id": change.account_id,
                                                 "change": change.amount, "reason": reason})


async def mark_decided(connection: AsyncConnection, transaction_id: UUID, state: ParticipantState,
                       account_ids: list[UUID]) -> list[tuple[UUID, Decimal]]:
    """Move this transfer's prepared rows on these accounts to the decided state; the rows moved now."""
    assert state is not ParticipantState.PREPARED, "a decision is commit or abort"
    result = await connection.execute(_MARK_DECIDED, {"transaction_id": transaction_id, "state": state.value,
                                                      "account_ids": account_ids})
    return [(row.account_id, row.change) for row in result]


async def select_transfer_accounts(connection: AsyncConnection, transaction_id: UUID) -> list[UUID]:
    result = await connection.execute(_SELECT_TRANSFER_ACCOUNTS, {"transaction_id": transaction_id})
    return [row.account_id for row in result]


async def select_in_doubt(connection: AsyncConnection, in_doubt_s: float, limit: int) -> list[UUID]:
    """Transfers holding a lock here for longer than in_doubt_s."""
    result = await connection.execute(_SELECT_IN_DOUBT, {"in_doubt_s": in_doubt_s, "limit": limit})
    return [row.transaction_lock for row in result]


async def purge_tombstones(connection: AsyncConnection, retention_s: float, limit: int) -> int:
    result = await connection.execute(_PURGE_TOMBSTONES, {"retention_s": retention_s, "limit": limit})
    return result.rowcount


async def apply_commit(connection: AsyncConnection, transaction_id: UUID, account_id: UUID) -> Decimal | None:
    row = (await connection.execute(_APPLY_COMMIT, {"transaction_id": transaction_id,
                                                    "account_id": account_id})).first()
    return row.balance if row is not None else None


async def release_lock(connection: AsyncConnection, transaction_id: UUID, account_id: UUID) -> bool:
    result = await connection.execute(_RELEASE_LOCK, {"transaction_id": transaction_id, "account_id": account_id})
    return result.first() is not None


async def count_locks(connection: AsyncConnection, in_doubt_s: float) -> tuple[int, int]:
    """(rows locked by a prepared transfer, of which held past the in-doubt timeout)."""
    row = (await connection.execute(_COUNT_LOCKS, {"in_doubt_s": in_doubt_s})).one()
    return row.locked, row.in_doubt
