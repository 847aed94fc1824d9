"""Queries on the accounts database: accounts rows and the participant log. Every function takes a connection."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from accounts_service.domain import LedgerKind, Leg, ParticipantState
from shared.database import row_dict
from shared.hot_sql import HotStatement

# SQLSTATEs our statements raise through participant_assert() (migration 0002).
BALANCE_CHECK_CONSTRAINT = "prepared_balance_not_negative"  # accounts: balance + pending change >= 0
RACE_LOST = "PB001"  # a prepare lost a race with an abort's tombstone: vote NO
INVARIANT_BROKEN = "PB500"  # a prepared leg without its lock: a bug, never expected

ACCOUNT_COLUMNS = (
    "account_id, customer_id, balance, transaction_lock, pending_change, locked_at, created_at, updated_at"
)

_INSERT_ACCOUNT = text(f"""
    INSERT INTO accounts (account_id, customer_id, balance) VALUES (:account_id, :customer_id, :balance)
    RETURNING {ACCOUNT_COLUMNS}""")
_SELECT_ACCOUNT = text(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = :account_id")
_SELECT_ACCOUNT_FOR_UPDATE = text(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = :account_id FOR UPDATE")
_SELECT_CUSTOMER_ACCOUNTS = text(f"""
    SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE customer_id = :customer_id ORDER BY created_at, account_id""")
_SELECT_OWNERS = HotStatement("""
    SELECT account_id, customer_id FROM accounts WHERE account_id = ANY(CAST(:account_ids AS UUID[]))""")
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

# The prepare, one statement (atomic on its own): lock the rows in account-id order (so two prepares
# never wait on each other in a cycle), read their latest versions, and only if this transfer is new
# here and every leg can be locked, lock them all and log them `prepared`. The rows it returns (one per
# leg) say why not otherwise. If an abort's tombstone was committed after this statement's snapshot,
# logging conflicts and the whole statement aborts itself (PB001). A commit on one of its accounts
# after the snapshot can make the balance CHECK refuse the write (checked on the snapshot's row version
# first): nothing is written either, and participant._prepare_once runs it again.
PREPARE_LEGS = text("""
    WITH wanted AS (
        SELECT * FROM unnest(CAST(:account_ids AS UUID[]), CAST(:changes AS NUMERIC[])) AS leg(account_id, change)),
    current AS (
        SELECT account_id, balance, transaction_lock FROM accounts
        WHERE account_id = ANY(CAST(:account_ids AS UUID[])) ORDER BY account_id FOR UPDATE),
    earlier AS (
        SELECT account_id, state FROM participant_log
        WHERE transaction_id = :transaction_id AND account_id = ANY(CAST(:account_ids AS UUID[]))),
    lockable AS (
        SELECT NOT EXISTS (SELECT 1 FROM earlier)
               AND (SELECT count(*) FROM current JOIN wanted USING (account_id)
                    WHERE transaction_lock IS NULL AND balance + change >= 0) = cardinality(CAST(:account_ids AS UUID[]))
               AS all_legs),
    locked AS (
        UPDATE accounts SET transaction_lock = :transaction_id, pending_change = wanted.change, locked_at = now(),
                            updated_at = now()
        FROM wanted, lockable
        WHERE accounts.account_id = wanted.account_id AND lockable.all_legs
        RETURNING accounts.account_id),
    logged AS (
        INSERT INTO participant_log (transaction_id, account_id, state, change, kind)
        SELECT :transaction_id, wanted.account_id, 'prepared', wanted.change, 'transfer'
        FROM wanted JOIN locked USING (account_id)
        ON CONFLICT (transaction_id, account_id) DO NOTHING
        RETURNING account_id)
    SELECT wanted.account_id, current.account_id IS NOT NULL AS account_exists, current.balance,
           current.transaction_lock, earlier.state AS earlier_state,
           (SELECT count(*) FROM locked) AS locked_legs,
           participant_assert((SELECT count(*) FROM logged) = (SELECT count(*) FROM locked), 'PB001',
                              'prepare lost a race with an abort') AS logged_all
    FROM wanted LEFT JOIN current USING (account_id) LEFT JOIN earlier USING (account_id)
    ORDER BY wanted.account_id""")
# The commit, one statement: mark the named legs committed, then, taking the account rows in
# account-id order like every prepare does (any other order can deadlock with a prepare), apply their
# pending changes and release their locks. A prepared leg whose account does not hold this transfer's lock would be a broken
# invariant: the statement aborts itself (PB500) and nothing is applied. A transfer aborted here on any leg
# is a contradiction, checked before acting: nothing is marked or applied, and the rows show the tombstone.
COMMIT_LEGS = text("""
    WITH decided AS (
        UPDATE participant_log SET state = 'committed', updated_at = now()
        WHERE transaction_id = :transaction_id AND state = 'prepared'
          AND (CAST(:account_ids AS UUID[]) IS NULL OR account_id = ANY(CAST(:account_ids AS UUID[])))
          AND NOT EXISTS (SELECT 1 FROM participant_log AS tombstone
                          WHERE tombstone.transaction_id = :transaction_id AND tombstone.state = 'aborted')
        RETURNING account_id, updated_at),
    ordered AS (
        SELECT account_id FROM accounts WHERE account_id IN (SELECT account_id FROM decided)
        ORDER BY account_id FOR UPDATE),
    applied AS (
        UPDATE accounts SET balance = balance + pending_change, transaction_lock = NULL, pending_change = NULL,
                            locked_at = NULL, updated_at = now()
        FROM ordered
        WHERE accounts.account_id = ordered.account_id AND accounts.transaction_lock = :transaction_id
        RETURNING accounts.account_id, accounts.balance)
    SELECT log.transaction_id, log.account_id,
           CASE WHEN decided.account_id IS NULL THEN log.state ELSE 'committed' END AS state,
           log.change, log.kind, log.reason, log.created_at, COALESCE(decided.updated_at, log.updated_at) AS updated_at,
           applied.balance AS balance_after,
           EXISTS (SELECT 1 FROM participant_log AS tombstone
                   WHERE tombstone.transaction_id = :transaction_id AND tombstone.state = 'aborted') AS aborted_here,
           participant_assert((SELECT count(*) FROM decided) = (SELECT count(*) FROM applied), 'PB500',
                               'a prepared change had lost its account lock') AS applied_all
    FROM participant_log AS log LEFT JOIN decided USING (account_id) LEFT JOIN applied USING (account_id)
    WHERE log.transaction_id = :transaction_id
      AND (CAST(:account_ids AS UUID[]) IS NULL OR log.account_id = ANY(CAST(:account_ids AS UUID[])))
    ORDER BY log.account_id""")
_SELECT_TRANSFER_LOG = text("""
    SELECT transaction_id, account_id, state, change, kind, reason, created_at, updated_at FROM participant_log
    WHERE transaction_id = :transaction_id ORDER BY account_id""")
_INSERT_TOMBSTONE = text("""
    INSERT INTO participant_log (transaction_id, account_id, state, change, kind, reason)
    VALUES (:transaction_id, :account_id, 'aborted', :change, 'transfer', :reason)
    ON CONFLICT (transaction_id, account_id) DO NOTHING""")
_MARK_DECIDED = text("""
    UPDATE participant_log SET state = :state, updated_at = now()
    WHERE transaction_id = :transaction_id AND account_id = ANY(:account_ids) AND state = 'prepared'
    RETURNING account_id, change""")
_SELECT_TRANSFER_ACCOUNTS = text("SELECT account_id FROM participant_log WHERE transaction_id = :transaction_id")
# Oldest lock first: the batch is bounded, and a transfer locked longest has waited longest.
_SELECT_IN_DOUBT = text("""
    SELECT transaction_lock FROM accounts
    WHERE transaction_lock IS NOT NULL AND locked_at < now() - make_interval(secs => :in_doubt_s)
    GROUP BY transaction_lock ORDER BY min(locked_at), transaction_lock
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
_RELEASE_LOCK = text("""
    UPDATE accounts SET transaction_lock = NULL, pending_change = NULL, locked_at = NULL, updated_at = now()
    WHERE account_id = :account_id AND transaction_lock = :transaction_id
    RETURNING account_id""")


async def insert_account(
    connection: AsyncConnection, account_id: UUID, customer_id: UUID, balance: Decimal
) -> dict[str, Any]:
    result = await connection.execute(
        _INSERT_ACCOUNT, {"account_id": account_id, "customer_id": customer_id, "balance": balance}
    )
    return row_dict(result.one())


async def select_account(
    connection: AsyncConnection, account_id: UUID, *, for_update: bool = False
) -> dict[str, Any] | None:
    statement = _SELECT_ACCOUNT_FOR_UPDATE if for_update else _SELECT_ACCOUNT
    return row_dict((await connection.execute(statement, {"account_id": account_id})).first())


async def select_customer_accounts(connection: AsyncConnection, customer_id: UUID) -> list[dict[str, Any]]:
    result = await connection.execute(_SELECT_CUSTOMER_ACCOUNTS, {"customer_id": customer_id})
    return [dict(row._mapping) for row in result]


async def select_owners(connection: asyncpg.Connection, account_ids: list[UUID]) -> dict[UUID, UUID]:
    """account_id -> customer_id for those of these accounts that exist (one index lookup each)."""
    rows = await _SELECT_OWNERS.fetch(connection, {"account_ids": account_ids})
    return {row["account_id"]: row["customer_id"] for row in rows}


async def set_balance(connection: AsyncConnection, account_id: UUID, balance: Decimal) -> dict[str, Any]:
    result = await connection.execute(_SET_BALANCE, {"account_id": account_id, "balance": balance})
    return row_dict(result.one())


async def insert_ledger_row(
    connection: AsyncConnection,
    *,
    transaction_id: UUID,
    account_id: UUID,
    change: Decimal,
    kind: LedgerKind,
    reason: str | None = None,
) -> None:
    await connection.execute(
        _INSERT_LEDGER_ROW,
        {
            "transaction_id": transaction_id,
            "account_id": account_id,
            "state": ParticipantState.COMMITTED.value,
            "change": change,
            "kind": kind.value,
            "reason": reason,
        },
    )


async def select_ledger(connection: AsyncConnection, account_id: UUID, limit: int, offset: int) -> list[dict[str, Any]]:
    result = await connection.execute(_SELECT_LEDGER, {"account_id": account_id, "limit": limit, "offset": offset})
    return [dict(row._mapping) for row in result]


async def prepare_legs(connection: AsyncConnection, transaction_id: UUID, ordered: list[Leg]) -> list[dict[str, Any]]:
    result = await connection.execute(
        PREPARE_LEGS,
        {
            "transaction_id": transaction_id,
            "account_ids": [change.account_id for change in ordered],
            "changes": [leg.change for leg in ordered],
        },
    )
    return [dict(row._mapping) for row in result]


async def commit_legs(
    connection: AsyncConnection, transaction_id: UUID, account_ids: list[UUID] | None
) -> list[dict[str, Any]]:
    result = await connection.execute(COMMIT_LEGS, {"transaction_id": transaction_id, "account_ids": account_ids})
    return [dict(row._mapping) for row in result]


async def select_transfer_log(connection: AsyncConnection, transaction_id: UUID) -> list[dict[str, Any]]:
    result = await connection.execute(_SELECT_TRANSFER_LOG, {"transaction_id": transaction_id})
    return [dict(row._mapping) for row in result]


async def insert_tombstone(connection: AsyncConnection, transaction_id: UUID, leg: Leg, reason: str) -> None:
    await connection.execute(
        _INSERT_TOMBSTONE,
        {"transaction_id": transaction_id, "account_id": leg.account_id, "change": leg.change, "reason": reason},
    )


async def mark_decided(
    connection: AsyncConnection, transaction_id: UUID, state: ParticipantState, account_ids: list[UUID]
) -> list[tuple[UUID, Decimal]]:
    """Move this transfer's prepared rows on these accounts to the decided state; the rows moved now."""
    assert state is not ParticipantState.PREPARED, "a decision is commit or abort"
    result = await connection.execute(
        _MARK_DECIDED, {"transaction_id": transaction_id, "state": state.value, "account_ids": account_ids}
    )
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


async def release_lock(connection: AsyncConnection, transaction_id: UUID, account_id: UUID) -> bool:
    result = await connection.execute(_RELEASE_LOCK, {"transaction_id": transaction_id, "account_id": account_id})
    return result.first() is not None


async def count_locks(connection: AsyncConnection, in_doubt_s: float) -> tuple[int, int]:
    """(rows locked by a prepared transfer, of which held past the in-doubt timeout)."""
    row = (await connection.execute(_COUNT_LOCKS, {"in_doubt_s": in_doubt_s})).one()
    return row.locked, row.in_doubt


# --- batches (accounts_service/participant_batch.py) ------------------------------------------------------------
# Every batch statement takes account rows in account-id order, all of a batch's rows in one statement
# and before any participant-log row, so two batches (or a batch and a single prepare, which does the same)
# never wait on each other in a cycle.
DEADLOCK_DETECTED = "40P01"  # PostgreSQL broke a lock cycle by aborting this transaction (nothing of it stays)

_LOCK_ACCOUNTS = HotStatement("""
    SELECT account_id, balance, transaction_lock FROM accounts
    WHERE account_id = ANY(CAST(:account_ids AS UUID[])) ORDER BY account_id FOR UPDATE""")
_SELECT_BATCH_LOG = HotStatement("""
    SELECT transaction_id, account_id, state, change FROM participant_log
    WHERE transaction_id = ANY(CAST(:transaction_ids AS UUID[]))""")
# One write for a whole batch prepare, after its transaction locked the rows and planned each entry: lock
# and log `prepared` the legs of its YES entries, log the tombstones of its NO entries. A prepared row that
# cannot be logged means a log row of that transfer appeared after the plan's read (an abort's tombstone):
# the statement aborts itself (PB001) and the caller runs the whole round again with a fresh read.
PREPARE_BATCH_WRITE = HotStatement("""
    WITH leg AS (
        SELECT * FROM unnest(CAST(:transaction_ids AS UUID[]), CAST(:account_ids AS UUID[]),
                             CAST(:changes AS NUMERIC[]), CAST(:states AS TEXT[]), CAST(:reasons AS TEXT[]))
                 AS leg(transaction_id, account_id, change, state, reason)),
    logged AS (
        INSERT INTO participant_log (transaction_id, account_id, state, change, kind, reason)
        SELECT transaction_id, account_id, state, change, 'transfer', reason FROM leg
        ORDER BY transaction_id, account_id
        ON CONFLICT (transaction_id, account_id) DO NOTHING
        RETURNING state),
    locked AS (
        UPDATE accounts SET transaction_lock = leg.transaction_id, pending_change = leg.change, locked_at = now(),
                            updated_at = now()
        FROM leg
        WHERE accounts.account_id = leg.account_id AND leg.state = 'prepared' AND accounts.transaction_lock IS NULL
        RETURNING accounts.account_id)
    SELECT participant_assert((SELECT count(*) FROM logged WHERE state = 'prepared')
                              = (SELECT count(*) FROM leg WHERE state = 'prepared'), 'PB001',
                              'a batch prepare lost a race with an abort') AS logged_all,
           participant_assert((SELECT count(*) FROM locked) = (SELECT count(*) FROM leg WHERE state = 'prepared'),
                              'PB500', 'a batch prepare found taken a lock it had locked free') AS locked_all""")
# The commit of many transfers, one statement, each transfer exactly as COMMIT_LEGS does it alone: its named
# legs (a NULL account: every leg held here) go committed unless it was aborted here on any leg; then the
# account rows, in account-id order, get their pending changes and lose their locks. The rows say, per leg,
# what each transfer's own answer is.
COMMIT_BATCH = HotStatement("""
    WITH wanted AS (
        SELECT * FROM unnest(CAST(:transaction_ids AS UUID[]), CAST(:account_ids AS UUID[]))
                 AS wanted(transaction_id, account_id)),
    logged AS (  -- every log row of the batch's transfers (an index range each), taken in key order, so two
                 -- commit-batches sharing transfers (a resend) queue on them instead of deadlocking
        SELECT transaction_id, account_id, state FROM participant_log
        WHERE transaction_id = ANY(CAST(:transaction_ids AS UUID[]))
        ORDER BY transaction_id, account_id FOR UPDATE),
    aborted AS (SELECT DISTINCT transaction_id FROM logged WHERE state = 'aborted'),
    targeted AS (
        SELECT logged.transaction_id, logged.account_id, logged.state,
               logged.transaction_id IN (SELECT transaction_id FROM aborted) AS aborted_here
        FROM logged
        WHERE EXISTS (SELECT 1 FROM wanted WHERE wanted.transaction_id = logged.transaction_id
                                             AND (wanted.account_id IS NULL OR wanted.account_id = logged.account_id))),
    decided AS (
        UPDATE participant_log SET state = 'committed', updated_at = now()
        FROM targeted
        WHERE participant_log.transaction_id = targeted.transaction_id
          AND participant_log.account_id = targeted.account_id
          AND participant_log.state = 'prepared' AND NOT targeted.aborted_here
        RETURNING participant_log.transaction_id, participant_log.account_id),
    ordered AS (
        SELECT accounts.account_id, decided.transaction_id FROM accounts JOIN decided USING (account_id)
        ORDER BY accounts.account_id FOR UPDATE OF accounts),
    applied AS (
        UPDATE accounts SET balance = balance + pending_change, transaction_lock = NULL, pending_change = NULL,
                            locked_at = NULL, updated_at = now()
        FROM ordered
        WHERE accounts.account_id = ordered.account_id AND accounts.transaction_lock = ordered.transaction_id
        RETURNING ordered.transaction_id, accounts.account_id, accounts.balance)
    -- Three kinds of rows, not one join of them: the planner cannot size CTEs, and a nested loop over two
    -- of them grows with the square of the batch.
    SELECT 'leg' AS kind, transaction_id, account_id, aborted_here, NULL::numeric AS balance_after FROM targeted
    UNION ALL
    SELECT 'applied', transaction_id, account_id, false, balance FROM applied
    UNION ALL
    SELECT 'check', NULL, NULL, participant_assert((SELECT count(*) FROM decided) = (SELECT count(*) FROM applied),
                                                   'PB500', 'a prepared change had lost its account lock'), NULL""")
# An abort-batch takes its rows first: the accounts it names and every account its transfers hold here.
_LOCK_ABORT_ACCOUNTS = HotStatement("""
    SELECT account_id FROM accounts
    WHERE account_id = ANY(CAST(:account_ids AS UUID[]))
       OR account_id IN (SELECT account_id FROM participant_log
                         WHERE transaction_id = ANY(CAST(:transaction_ids AS UUID[])))
    ORDER BY account_id FOR UPDATE""")
# Then, for the transfers it may abort, one write: tombstones on the named legs not logged here yet, the
# prepared legs (named, or all: a NULL account) marked aborted, and their locks released.
ABORT_BATCH_WRITE = HotStatement("""
    WITH tombstone AS (
        SELECT * FROM unnest(CAST(:tombstone_transaction_ids AS UUID[]), CAST(:tombstone_account_ids AS UUID[]),
                             CAST(:tombstone_changes AS NUMERIC[])) AS tombstone(transaction_id, account_id, change)),
    wanted AS (
        SELECT * FROM unnest(CAST(:transaction_ids AS UUID[]), CAST(:account_ids AS UUID[]))
                 AS wanted(transaction_id, account_id)),
    logged AS (
        INSERT INTO participant_log (transaction_id, account_id, state, change, kind, reason)
        SELECT transaction_id, account_id, 'aborted', change, 'transfer', 'coordinator_abort' FROM tombstone
        ORDER BY transaction_id, account_id
        ON CONFLICT (transaction_id, account_id) DO NOTHING
        RETURNING account_id),
    decided AS (
        UPDATE participant_log SET state = 'aborted', updated_at = now()
        FROM wanted
        WHERE participant_log.transaction_id = wanted.transaction_id
          AND (wanted.account_id IS NULL OR participant_log.account_id = wanted.account_id)
          AND participant_log.state = 'prepared'
        RETURNING participant_log.transaction_id, participant_log.account_id),
    released AS (
        UPDATE accounts SET transaction_lock = NULL, pending_change = NULL, locked_at = NULL, updated_at = now()
        FROM decided
        WHERE accounts.account_id = decided.account_id AND accounts.transaction_lock = decided.transaction_id
        RETURNING accounts.account_id)
    SELECT released.account_id, (SELECT count(*) FROM logged) AS tombstones,
           participant_assert((SELECT count(*) FROM decided) = (SELECT count(*) FROM released), 'PB500',
                              'a prepared change had lost its account lock') AS released_all
    FROM (SELECT 1) AS one LEFT JOIN released ON true""")


def _array_params(rows: list[tuple[Any, ...]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    """Rows as one array per column, for unnest(): a batch statement's parameters."""
    columns: list[list[Any]] = [[] for _ in names]
    for row in rows:
        assert len(row) == len(names), "one value per column"
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return dict(zip(names, columns, strict=True))


async def lock_accounts(connection: asyncpg.Connection, account_ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    """Take these account rows (their latest versions) in account-id order, one statement."""
    return {
        row["account_id"]: dict(row) for row in await _LOCK_ACCOUNTS.fetch(connection, {"account_ids": account_ids})
    }


async def select_batch_log(connection: asyncpg.Connection, transaction_ids: list[UUID]) -> list[dict[str, Any]]:
    return [dict(row) for row in await _SELECT_BATCH_LOG.fetch(connection, {"transaction_ids": transaction_ids})]


async def write_prepare_batch(
    connection: asyncpg.Connection, legs: list[tuple[UUID, UUID, Decimal, ParticipantState, str | None]]
) -> None:
    """Log and lock (state prepared) or tombstone (state aborted, with its reason) these (transfer, account) legs."""
    params = _array_params(
        [
            (transaction_id, account_id, change, state.value, reason)
            for transaction_id, account_id, change, state, reason in legs
        ],
        ("transaction_ids", "account_ids", "changes", "states", "reasons"),
    )
    assert len(await PREPARE_BATCH_WRITE.fetch(connection, params)) == 1, "one row of checks"


async def commit_batch(connection: asyncpg.Connection, legs: list[tuple[UUID, UUID | None]]) -> list[dict[str, Any]]:
    """Commit these (transfer, account or None for every leg) pairs; one row per targeted leg, with the
    balance it was applied to now (None: already committed, or refused)."""
    rows = await COMMIT_BATCH.fetch(connection, _array_params(legs, ("transaction_ids", "account_ids")))
    applied = {
        (row["transaction_id"], row["account_id"]): row["balance_after"] for row in rows if row["kind"] == "applied"
    }
    legs_found = [row for row in rows if row["kind"] == "leg"]
    assert len(applied) + len(legs_found) + 1 == len(rows), "legs, applied legs and one check row"
    return [
        {
            "transaction_id": row["transaction_id"],
            "account_id": row["account_id"],
            "aborted_here": row["aborted_here"],
            "balance_after": applied.get((row["transaction_id"], row["account_id"])),
        }
        for row in legs_found
    ]


async def lock_abort_accounts(
    connection: asyncpg.Connection, account_ids: list[UUID], transaction_ids: list[UUID]
) -> None:
    await _LOCK_ABORT_ACCOUNTS.fetch(connection, {"account_ids": account_ids, "transaction_ids": transaction_ids})


async def write_abort_batch(
    connection: asyncpg.Connection,
    tombstones: list[tuple[UUID, UUID, Decimal]],
    legs: list[tuple[UUID, UUID | None]],
) -> list[UUID]:
    """Tombstone, mark aborted and release, for a batch of aborts; the accounts released now."""
    params = {
        **_array_params(tombstones, ("tombstone_transaction_ids", "tombstone_account_ids", "tombstone_changes")),
        **_array_params(legs, ("transaction_ids", "account_ids")),
    }
    rows = await ABORT_BATCH_WRITE.fetch(connection, params)
    return [row["account_id"] for row in rows if row["account_id"] is not None]
