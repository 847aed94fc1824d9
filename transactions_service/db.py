"""Queries on the coordinator log. Every state change is a compare-and-set on the stored status."""

from __future__ import annotations

from datetime import datetime
from typing import Any, overload
from uuid import UUID

import asyncpg
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import jsonio
from shared.hot_sql import HotStatement
from transactions_service.domain import Event, NewTransfer, Transfer, TransferRequest
from transactions_service.protocol import Decision, TransferStatus

TRANSFER_COLUMNS = (
    "transaction_id, source_account_id, destination_account_id, amount, status, reason, "
    "idempotency_key, request_fingerprint, requested_by, requested_by_customer_id, "
    "created_at, updated_at, decided_at, completed_at, completion_attempts, next_attempt_at"
)

# Each state change and the events it logs are one statement: atomic on its own, one round trip, for
# one transfer or a batch of many (each row its own transfer, its own compare-and-set).
# `changed` holds the rows the change touched (not those whose compare-and-set lost); events are
# logged only for those (a completion attempt logs its own either way: _RECORD_COMPLETIONS).
# The events keep their given order (WITH ORDINALITY), so their ids follow the protocol's order.
_EVENTS_GIVEN = """
        FROM unnest(CAST(:event_transaction_ids AS UUID[]), CAST(:event_types AS TEXT[]),
                    CAST(:event_participants AS TEXT[]), CAST(:event_details AS TEXT[]),
                    CAST(:event_times AS TIMESTAMPTZ[]))
             WITH ORDINALITY AS event(transaction_id, event_type, participant, details, occurred_at, ordinal)"""
_INSERT_EVENTS_GIVEN = (
    """
        INSERT INTO transaction_events (transaction_id, event_type, participant, details, occurred_at)
        SELECT event.transaction_id, event.event_type, event.participant, CAST(event.details AS JSONB),
               event.occurred_at"""
    + _EVENTS_GIVEN
)
_LOG_EVENTS = f"""
    , logged AS ({_INSERT_EVENTS_GIVEN}
        WHERE event.transaction_id IN (SELECT transaction_id FROM changed)
        ORDER BY event.ordinal)
    SELECT {TRANSFER_COLUMNS} FROM changed"""
# ON CONFLICT without a target covers both unique keys; a batch never holds two rows with one name
# (the coordinator's accept batcher keeps them apart), so each conflict is with a stored transfer.
_INSERT_TRANSFERS = HotStatement(
    f"""
    WITH changed AS (
        INSERT INTO transactions (transaction_id, source_account_id, destination_account_id, amount, status,
                                  idempotency_key, request_fingerprint, requested_by, requested_by_customer_id)
        SELECT new.transaction_id, new.source_account_id, new.destination_account_id, new.amount, 'preparing',
               new.idempotency_key, new.request_fingerprint, new.requested_by, new.requested_by_customer_id
        FROM unnest(CAST(:transaction_ids AS UUID[]), CAST(:source_account_ids AS UUID[]),
                    CAST(:destination_account_ids AS UUID[]), CAST(:amounts AS NUMERIC[]),
                    CAST(:idempotency_keys AS TEXT[]), CAST(:request_fingerprints AS TEXT[]),
                    CAST(:requested_bys AS TEXT[]), CAST(:requested_by_customer_ids AS UUID[]))
             WITH ORDINALITY AS new(transaction_id, source_account_id, destination_account_id, amount,
                                    idempotency_key, request_fingerprint, requested_by, requested_by_customer_id,
                                    ordinal)
        ORDER BY new.ordinal
        ON CONFLICT DO NOTHING
        RETURNING {TRANSFER_COLUMNS})"""
    + _LOG_EVENTS
)
_SELECT_TRANSFER = text(f"SELECT {TRANSFER_COLUMNS} FROM transactions WHERE transaction_id = :transaction_id")
_SELECT_TRANSFERS = HotStatement(
    f"SELECT {TRANSFER_COLUMNS} FROM transactions WHERE transaction_id = ANY(CAST(:transaction_ids AS UUID[]))"
)
_SELECT_BY_IDEMPOTENCY_KEY = text(f"""
    SELECT {TRANSFER_COLUMNS} FROM transactions WHERE requested_by = :requested_by AND idempotency_key = :key""")
# The commit point, for each transfer of the batch: exactly one decision wins; a loser reads the stored one.
_DECIDE = HotStatement(
    f"""
    WITH changed AS (
        UPDATE transactions SET status = decided.decided_status, reason = decided.decided_reason,
                                decided_at = now(), updated_at = now(),
                                next_attempt_at = now() + make_interval(secs => :completion_grace_s)
        FROM unnest(CAST(:transaction_ids AS UUID[]), CAST(:statuses AS TEXT[]), CAST(:reasons AS TEXT[]))
             AS decided(decided_id, decided_status, decided_reason)
        WHERE transaction_id = decided.decided_id AND status = 'preparing'
        RETURNING {TRANSFER_COLUMNS})"""
    + _LOG_EVENTS
)
# Presumed abort: every transfer still preparing past the deadline, a bounded batch, skipping rows
# another coordinator replica is deciding right now.
_ABORT_ORPHANS = text(f"""
    UPDATE transactions SET status = 'aborted', reason = :reason, decided_at = now(), updated_at = now(),
                            next_attempt_at = now()
    WHERE transaction_id IN (
        SELECT transaction_id FROM transactions
        WHERE status = 'preparing' AND created_at < now() - make_interval(secs => :deadline_s)
        ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED)
      AND status = 'preparing'
    RETURNING {TRANSFER_COLUMNS}""")
# Claim decided, unfinished transfers for one completion attempt. The claim is a lease (next_attempt_at)
# that covers the whole attempt, every send included, so no other replica re-sends the decision while
# this one is still sending it; the attempt then sets the backoff (_RECORD_COMPLETION).
_CLAIM_UNFINISHED = text(f"""
    UPDATE transactions SET completion_attempts = completion_attempts + 1, updated_at = now(),
        next_attempt_at = now() + make_interval(secs => :lease_s)
    WHERE transaction_id IN (
        SELECT transaction_id FROM transactions
        WHERE completed_at IS NULL AND status <> 'preparing' AND next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED)
    RETURNING {TRANSFER_COLUMNS}""")
# The doublings of the backoff are capped: 2^1024 overflows a double precision (PostgreSQL raises
# `value out of range`), and any cap past log2(retry_max_s / retry_first_s) gives the same waits.
BACKOFF_DOUBLINGS_MAX = 30
# One completion attempt per transfer of the batch, one statement: each attempt's events are logged
# whatever happened; a transfer every participant acknowledged is marked completed (and its `completed`
# event logged); any other waits retry_first_s * 2^(attempts so far - 1), at most retry_max_s.
_RECORD_COMPLETIONS = HotStatement(f"""
    WITH changed AS (
        UPDATE transactions SET updated_at = now(),
            completed_at = CASE WHEN attempt.all_acknowledged THEN now() END,
            next_attempt_at = CASE WHEN attempt.all_acknowledged THEN next_attempt_at ELSE now() + make_interval(
                secs => LEAST(:retry_max_s, :retry_first_s * power(2, LEAST(GREATEST(completion_attempts - 1, 0),
                                                                              {BACKOFF_DOUBLINGS_MAX})))) END
        FROM unnest(CAST(:transaction_ids AS UUID[]), CAST(:all_acknowledged AS BOOLEAN[]))
             AS attempt(attempted_id, all_acknowledged)
        WHERE transaction_id = attempt.attempted_id AND status <> 'preparing' AND completed_at IS NULL
        RETURNING {TRANSFER_COLUMNS}),
    logged AS ({_INSERT_EVENTS_GIVEN}
        WHERE event.event_type <> 'completed' OR EXISTS (
            SELECT 1 FROM changed WHERE changed.transaction_id = event.transaction_id AND completed_at IS NOT NULL)
        ORDER BY event.ordinal)
    SELECT {TRANSFER_COLUMNS} FROM changed WHERE completed_at IS NOT NULL""")
_INSERT_EVENT = text("""
    INSERT INTO transaction_events (transaction_id, event_type, participant, details, occurred_at)
    VALUES (:transaction_id, :event_type, :participant, CAST(:details AS JSONB), :occurred_at)""")
_SELECT_EVENTS = text("""
    SELECT event_id, event_type, participant, details::text AS details, occurred_at, recorded_at
    FROM transaction_events
    WHERE transaction_id = :transaction_id ORDER BY occurred_at, event_id""")
_SELECT_ACCOUNT_HISTORY = text(f"""
    SELECT {TRANSFER_COLUMNS} FROM transactions
    WHERE source_account_id = :account_id OR destination_account_id = :account_id
    ORDER BY created_at DESC, transaction_id LIMIT :limit OFFSET :offset""")
_SELECT_BY_STATUS = text(f"""
    SELECT {TRANSFER_COLUMNS} FROM transactions WHERE status = :status
    ORDER BY created_at DESC, transaction_id LIMIT :limit OFFSET :offset""")
_SELECT_UNFINISHED = text(f"""
    SELECT {TRANSFER_COLUMNS} FROM transactions WHERE completed_at IS NULL AND created_at < :before
    ORDER BY created_at LIMIT :limit""")
_COUNT_UNFINISHED = text("SELECT count(*) FROM transactions WHERE completed_at IS NULL AND status <> 'preparing'")
_SELECT_STATS = text("""
    SELECT status, count(*) AS transfers, count(*) FILTER (WHERE completed_at IS NULL) AS unfinished,
           COALESCE(sum(amount), 0) AS amount
    FROM transactions GROUP BY status""")


@overload
def _transfer(row: Row[Any]) -> Transfer: ...
@overload
def _transfer(row: Row[Any] | None) -> Transfer | None: ...
def _transfer(row: Row[Any] | None) -> Transfer | None:
    return Transfer.from_row(dict(row._mapping)) if row is not None else None


def _transfers_by_id(rows: list[asyncpg.Record]) -> dict[UUID, Transfer]:
    transfers = [Transfer.from_row(dict(row)) for row in rows]
    return {transfer.transaction_id: transfer for transfer in transfers}


def _event_params(events_by_transfer: list[tuple[UUID, list[Event]]]) -> dict[str, Any]:
    """Every transfer's events as parallel arrays, in order (one unnest in the statement)."""
    events = [(transaction_id, event) for transaction_id, logged in events_by_transfer for event in logged]
    return {
        "event_transaction_ids": [transaction_id for transaction_id, _ in events],
        "event_types": [event.event_type.value for _, event in events],
        "event_participants": [event.participant for _, event in events],
        "event_details": [jsonio.dumps(event.details) for _, event in events],
        "event_times": [event.occurred_at for _, event in events],
    }


def _distinct_ids(transaction_ids: list[UUID]) -> list[UUID]:
    assert len(set(transaction_ids)) == len(transaction_ids), "one row per transfer in a statement"
    return transaction_ids


async def insert_transfers(connection: asyncpg.Connection, transfers: list[NewTransfer]) -> dict[UUID, Transfer]:
    """The new transfers with their first events, by id; a transfer whose id or caller's Idempotency-Key is
    taken is not among them.

    ON CONFLICT without a target covers both unique keys: the primary key (a client-named transfer) and
    (requested_by, idempotency_key). The database decides, so concurrent repeats on any replica meet here.
    """
    assert transfers, "a batch carries at least one transfer"
    rows = await _INSERT_TRANSFERS.fetch(
        connection,
        {
            **_event_params([(new.transaction_id, new.events) for new in transfers]),
            "transaction_ids": _distinct_ids([new.transaction_id for new in transfers]),
            "source_account_ids": [new.request.source_account_id for new in transfers],
            "destination_account_ids": [new.request.destination_account_id for new in transfers],
            "amounts": [new.request.amount for new in transfers],
            "idempotency_keys": [new.idempotency_key for new in transfers],
            "request_fingerprints": [new.request.fingerprint(new.requested_by) for new in transfers],
            "requested_bys": [new.requested_by for new in transfers],
            "requested_by_customer_ids": [new.requested_by_customer_id for new in transfers],
        },
    )
    return _transfers_by_id(rows)


async def insert_transfer(
    connection: asyncpg.Connection,
    transaction_id: UUID,
    request: TransferRequest,
    events: list[Event],
    *,
    idempotency_key: str | None,
    requested_by: str,
    requested_by_customer_id: UUID | None,
) -> Transfer | None:
    """One transfer with its first events, or None when its id or this caller's Idempotency-Key is taken."""
    new = NewTransfer(transaction_id, request, events, idempotency_key, requested_by, requested_by_customer_id)
    return (await insert_transfers(connection, [new])).get(transaction_id)


async def select_transfer(connection: AsyncConnection, transaction_id: UUID) -> Transfer | None:
    return _transfer((await connection.execute(_SELECT_TRANSFER, {"transaction_id": transaction_id})).first())


async def select_transfers(connection: asyncpg.Connection, transaction_ids: list[UUID]) -> dict[UUID, Transfer]:
    return _transfers_by_id(await _SELECT_TRANSFERS.fetch(connection, {"transaction_ids": transaction_ids}))


async def select_by_idempotency_key(connection: AsyncConnection, requested_by: str, key: str) -> Transfer | None:
    result = await connection.execute(_SELECT_BY_IDEMPOTENCY_KEY, {"requested_by": requested_by, "key": key})
    return _transfer(result.first())


async def store_decisions(
    connection: asyncpg.Connection, decisions: list[tuple[UUID, Decision, list[Event]]], *, completion_grace_s: float
) -> dict[UUID, Transfer]:
    """Compare-and-set preparing -> decision for each transfer, logging its events; the transfers whose
    decision was stored now, by id (one decided first by another is not among them).

    Recovery leaves each transfer to the request that decided it for completion_grace_s.
    """
    assert decisions, "a batch carries at least one decision"
    rows = await _DECIDE.fetch(
        connection,
        {
            **_event_params([(transaction_id, events) for transaction_id, _, events in decisions]),
            "transaction_ids": _distinct_ids([transaction_id for transaction_id, _, _ in decisions]),
            "statuses": [decision.status.value for _, decision, _ in decisions],
            "reasons": [decision.reason.value if decision.reason else None for _, decision, _ in decisions],
            "completion_grace_s": completion_grace_s,
        },
    )
    return _transfers_by_id(rows)


async def store_decision(
    connection: asyncpg.Connection,
    transaction_id: UUID,
    decision: Decision,
    events: list[Event],
    *,
    completion_grace_s: float,
) -> Transfer | None:
    """One transfer's compare-and-set; None when another decision was stored first."""
    stored = await store_decisions(
        connection, [(transaction_id, decision, events)], completion_grace_s=completion_grace_s
    )
    return stored.get(transaction_id)


async def abort_orphans(connection: AsyncConnection, *, deadline_s: float, reason: str, limit: int) -> list[Transfer]:
    result = await connection.execute(_ABORT_ORPHANS, {"deadline_s": deadline_s, "reason": reason, "limit": limit})
    return [_transfer(row) for row in result]


async def claim_unfinished(connection: AsyncConnection, *, lease_s: float, limit: int) -> list[Transfer]:
    """Decided, unfinished transfers due for a completion attempt, leased for lease_s to this caller."""
    assert lease_s > 0, "a claim is a lease"
    result = await connection.execute(_CLAIM_UNFINISHED, {"lease_s": lease_s, "limit": limit})
    return [_transfer(row) for row in result]


async def record_completions(
    connection: asyncpg.Connection,
    attempts: list[tuple[UUID, list[Event], bool]],
    *,
    retry_first_s: float,
    retry_max_s: float,
) -> dict[UUID, Transfer]:
    """Log each completion attempt's events (transaction id, events, whether every participant acknowledged);
    mark completed each transfer every participant acknowledged, else schedule its next attempt with backoff.

    The transfers completed now, by id.
    """
    assert attempts, "a batch carries at least one attempt"
    rows = await _RECORD_COMPLETIONS.fetch(
        connection,
        {
            **_event_params([(transaction_id, events) for transaction_id, events, _ in attempts]),
            "transaction_ids": _distinct_ids([transaction_id for transaction_id, _, _ in attempts]),
            "all_acknowledged": [all_acknowledged for _, _, all_acknowledged in attempts],
            "retry_first_s": retry_first_s,
            "retry_max_s": retry_max_s,
        },
    )
    return _transfers_by_id(rows)


async def record_completion(
    connection: asyncpg.Connection,
    transaction_id: UUID,
    events: list[Event],
    *,
    all_acknowledged: bool,
    retry_first_s: float,
    retry_max_s: float,
) -> Transfer | None:
    """One transfer's completion attempt; the completed transfer, or None when it was not completed now."""
    completed = await record_completions(
        connection, [(transaction_id, events, all_acknowledged)], retry_first_s=retry_first_s, retry_max_s=retry_max_s
    )
    return completed.get(transaction_id)


async def insert_events(connection: AsyncConnection, transaction_id: UUID, events: list[Event]) -> None:
    if events:
        await connection.execute(
            _INSERT_EVENT,
            [
                {
                    "transaction_id": transaction_id,
                    "event_type": event.event_type.value,
                    "participant": event.participant,
                    "details": jsonio.dumps(event.details),
                    "occurred_at": event.occurred_at,
                }
                for event in events
            ],
        )


async def select_events(connection: AsyncConnection, transaction_id: UUID) -> list[dict[str, Any]]:
    result = await connection.execute(_SELECT_EVENTS, {"transaction_id": transaction_id})
    # JSONB comes back as text and is parsed here, so amounts stay Decimal (the driver would make floats).
    return [{**row._mapping, "details": jsonio.loads(row.details)} for row in result]


async def select_account_history(
    connection: AsyncConnection, account_id: UUID, limit: int, offset: int
) -> list[Transfer]:
    result = await connection.execute(
        _SELECT_ACCOUNT_HISTORY, {"account_id": account_id, "limit": limit, "offset": offset}
    )
    return [_transfer(row) for row in result]


async def select_by_status(
    connection: AsyncConnection, status: TransferStatus, limit: int, offset: int
) -> list[Transfer]:
    result = await connection.execute(_SELECT_BY_STATUS, {"status": status.value, "limit": limit, "offset": offset})
    return [_transfer(row) for row in result]


async def select_unfinished(connection: AsyncConnection, before: datetime, limit: int) -> list[Transfer]:
    result = await connection.execute(_SELECT_UNFINISHED, {"before": before, "limit": limit})
    return [_transfer(row) for row in result]


async def select_stats(connection: AsyncConnection) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in await connection.execute(_SELECT_STATS)]


async def count_unfinished(connection: AsyncConnection) -> int:
    return (await connection.execute(_COUNT_UNFINISHED)).scalar_one()
