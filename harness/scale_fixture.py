"""The bench's scale fixture, written straight into the three databases: a million accounts through the API would take hours.

It bulk-loads customers, accounts with their opening ledger rows, and a history of committed transfers
(the coordinator's rows and events, the participant's committed legs) with INSERT ... SELECT over
generate_series, into the tables the migrations made. Their indexes and keys are dropped for the load
and rebuilt from their own definitions afterwards (as fast as building them once, and exactly the
migrations' indexes), then every table is vacuumed and analyzed, so the bench measures a settled
database and not autovacuum catching up. Money is consistent: transfers come in pairs that move the
same amount there and back, so every balance stays its opening balance and each ledger sums to it.

harness.hot_path_plans then shows which plans PostgreSQL picks for a transfer's statements on them.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg

OPENING_BALANCE = Decimal("1000")
ACCOUNTS_PER_CUSTOMER = 5
HISTORY_S = 30 * 24 * 3600  # the loaded transfers happened over the last thirty days
# The trail a committed transfer with one participant leaves in transaction_events.
EVENT_TYPES = ("accepted", "prepare_sent", "vote", "decision", "decision_sent", "acknowledged", "completed")
LOAD_TIMEOUT_S = 3600  # one statement may write tens of millions of rows on a slow machine
MAINTENANCE_WORK_MEM = "512MB"  # index builds sort in memory instead of on disk

# Transfer n (0-based) of $2 over $1 accounts: pairs 2p and 2p+1 move one amount between accounts a and
# b, there and back; b is never a.
_TRANSFERS = f"""
    SELECT n, md5('scale-transfer-' || n)::uuid AS transaction_id,
           md5('scale-account-' || CASE WHEN n % 2 = 0 THEN a ELSE b END)::uuid AS source_account_id,
           md5('scale-account-' || CASE WHEN n % 2 = 0 THEN b ELSE a END)::uuid AS destination_account_id,
           md5('scale-customer-' || (CASE WHEN n % 2 = 0 THEN a ELSE b END) / {ACCOUNTS_PER_CUSTOMER})::uuid AS customer_id,
           (1 + p % 100) / 100.0 AS amount,
           now() - make_interval(secs => ($2 - n) * {HISTORY_S}.0 / $2) AS created_at
    FROM (SELECT n, p, p % $1 AS a, (p % $1 + 1 + (p * 31) % ($1 - 1)) % $1 AS b
          FROM (SELECT n, n / 2 AS p FROM generate_series(0::bigint, $2 - 1) AS n) AS numbered) AS pairs
"""

_CUSTOMERS = """
    INSERT INTO customers (customer_id, name, address, contact_info)
    SELECT md5('scale-customer-' || n)::uuid, 'Scale Customer ' || n, n || ' Fixture Road',
           jsonb_build_object('email', 'scale-' || n || '@fixture.example')
    FROM generate_series(0, $1 - 1) AS n"""
_ACCOUNTS = f"""
    INSERT INTO accounts (account_id, customer_id, balance, created_at, updated_at)
    SELECT md5('scale-account-' || n)::uuid, md5('scale-customer-' || n / {ACCOUNTS_PER_CUSTOMER})::uuid, $2,
           now() - make_interval(secs => {HISTORY_S}), now() - make_interval(secs => {HISTORY_S})
    FROM generate_series(0, $1 - 1) AS n"""
_OPENINGS = f"""
    INSERT INTO participant_log (transaction_id, account_id, state, change, kind, created_at, updated_at)
    SELECT md5('scale-opening-' || n)::uuid, md5('scale-account-' || n)::uuid, 'committed', $2, 'opening',
           now() - make_interval(secs => {HISTORY_S}), now() - make_interval(secs => {HISTORY_S})
    FROM generate_series(0, $1 - 1) AS n"""
_LEGS = f"""
    INSERT INTO participant_log (transaction_id, account_id, state, change, kind, created_at, updated_at)
    SELECT transaction_id, CASE WHEN leg.debit THEN source_account_id ELSE destination_account_id END,
           'committed', CASE WHEN leg.debit THEN -amount ELSE amount END, 'transfer', created_at, created_at
    FROM ({_TRANSFERS}) AS transfer CROSS JOIN (VALUES (true), (false)) AS leg(debit)"""
_COORDINATOR_ROWS = f"""
    INSERT INTO transactions (transaction_id, source_account_id, destination_account_id, amount, status,
                              idempotency_key, request_fingerprint, requested_by, requested_by_customer_id,
                              created_at, updated_at, decided_at, completed_at, next_attempt_at)
    SELECT transaction_id, source_account_id, destination_account_id, amount, 'committed',
           'scale-' || n, md5('scale-fingerprint-' || n), customer_id::text, customer_id,
           created_at, created_at, created_at, created_at, created_at
    FROM ({_TRANSFERS}) AS transfer"""
_EVENTS = f"""
    INSERT INTO transaction_events (transaction_id, event_type, participant, details, occurred_at, recorded_at)
    SELECT transaction_id, event.event_type, CASE WHEN event.to_participant THEN 'accounts' END,
           '{{}}'::jsonb, created_at, created_at
    FROM ({_TRANSFERS}) AS transfer
    CROSS JOIN unnest(CAST($3 AS TEXT[]), CAST($4 AS BOOLEAN[])) AS event(event_type, to_participant)"""
_PARTICIPANT_EVENTS = frozenset({"prepare_sent", "vote", "decision_sent", "acknowledged"})


async def load(database_urls: dict[str, str], *, accounts: int, transfers: int) -> dict[str, Decimal]:
    """Fill the three services' databases (by service package name); seconds each database took (a Decimal:
    the bench writes it in its JSON, which holds no float)."""
    assert accounts >= 2, "a transfer needs two accounts"
    assert transfers % 2 == 0, "transfers come in pairs, there and back, so balances stay consistent"
    customers = -(-accounts // ACCOUNTS_PER_CUSTOMER)
    steps: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {
        "customer_service": (["customers"], [(_CUSTOMERS, customers)]),
        "accounts_service": (
            ["accounts", "participant_log"],
            [
                (_ACCOUNTS, accounts, OPENING_BALANCE),
                (_OPENINGS, accounts, OPENING_BALANCE),
                (_LEGS, accounts, transfers),
            ],
        ),
        "transactions_service": (
            ["transactions", "transaction_events"],
            [
                (_COORDINATOR_ROWS, accounts, transfers),
                (
                    _EVENTS,
                    accounts,
                    transfers,
                    list(EVENT_TYPES),
                    [kind in _PARTICIPANT_EVENTS for kind in EVENT_TYPES],
                ),
            ],
        ),
    }
    timings: dict[str, Decimal] = {}
    for service, (tables, statements) in steps.items():
        started = time.monotonic()
        await _load_database(database_urls[service], tables, statements)
        timings[service] = Decimal(f"{time.monotonic() - started:.1f}")
    return timings


async def _load_database(url: str, tables: list[str], statements: list[tuple]) -> None:
    connection = await asyncpg.connect(url, timeout=LOAD_TIMEOUT_S, command_timeout=LOAD_TIMEOUT_S)
    try:
        await connection.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
        # History loaded here is nobody's news: without triggers, the push channel's NOTIFY trigger does not
        # queue one notice per loaded transfer (the log's own triggers guard UPDATE and DELETE, not INSERT).
        await connection.execute("SET session_replication_role = replica")
        async with _keys_and_indexes_rebuilt(connection, tables):
            for statement, *arguments in statements:
                await connection.execute(statement, *arguments)
        for table in tables:
            await connection.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await connection.close()


@asynccontextmanager
async def _keys_and_indexes_rebuilt(connection: asyncpg.Connection, tables: list[str]) -> AsyncIterator[None]:
    """Drop the tables' keys and indexes, yield for the load, then rebuild them from their own definitions.

    Foreign keys from or to these tables go first and come back last, so each one finds the key it points to.
    """
    constraints = await connection.fetch(
        """
        SELECT conrelid::regclass::text AS table_name, conname AS name, contype AS kind,
               pg_get_constraintdef(oid) AS definition
        FROM pg_constraint
        WHERE (contype IN ('p', 'u') AND conrelid = ANY(CAST($1 AS regclass[])))
           OR (contype = 'f' AND (conrelid = ANY(CAST($1 AS regclass[])) OR confrelid = ANY(CAST($1 AS regclass[]))))
        ORDER BY contype = 'f' DESC""",
        tables,
    )
    indexes = await connection.fetch(
        """
        SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS definition FROM pg_index
        WHERE indrelid = ANY(CAST($1 AS regclass[]))
          AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)""",
        tables,
    )
    for constraint in constraints:
        await connection.execute(f'ALTER TABLE {constraint["table_name"]} DROP CONSTRAINT "{constraint["name"]}"')
    for index in indexes:
        await connection.execute(f'DROP INDEX "{index["name"]}"')
    yield
    for constraint in reversed(constraints):
        await connection.execute(
            f'ALTER TABLE {constraint["table_name"]} ADD CONSTRAINT "{constraint["name"]}" {constraint["definition"]}'
        )
    for index in indexes:
        await connection.execute(index["definition"])


def _md5_uuid(name: str) -> uuid.UUID:
    """The id the fixture's SQL computes as md5(name)::uuid."""
    return uuid.UUID(hashlib.md5(name.encode()).hexdigest())


def scale_account_id(index: int) -> uuid.UUID:
    return _md5_uuid(f"scale-account-{index}")


def scale_customer_id(index: int) -> uuid.UUID:
    return _md5_uuid(f"scale-customer-{index}")


def scale_transfer_id(index: int) -> uuid.UUID:
    return _md5_uuid(f"scale-transfer-{index}")
