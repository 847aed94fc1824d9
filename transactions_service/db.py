"""Queries on the coordinator log. Every state change is a compare-and-set on the stored status."""

from __future__ import annotations

from datetime import datetime
from typing import Any, overload
from uuid import UUID

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import jsonio
from transactions_service.domain import Event, Transfer, TransferRequest
from transactions_service.protocol import Decision, TransferStatus

TRANSFER_COLUMNS = (
    "transaction_id, source_account_id, destination_account_id, amount, status, reason, "
    "idempotency_key, request_fingerprint, requested_by, requested_by_customer_id, "
    "created_at, updated_at, decided_at, completed_at, completion_attempts, next_attempt_at"
)

# Each state change and the events it logs are one statement: atomic on its own, one round trip.
# `changed` holds the row the change touched (none when a compare-and-set lost); its events are
# logged only with it (a completion attempt logs its own either way: _RECORD_COMPLETION).
_LOG_EVENTS = f"""
    , logged AS (
        INSERT INTO transaction_events (transaction_id, event_type, participant, details, occurred_at)
        SELECT CAST(:transaction_id AS UUID), event.event_type, event.participant, CAST(event.details AS JSONB),
               event.occurred_at
        FROM unnest(CAST(:event_types AS TEXT[]), CAST(:event_participants AS TEXT[]),
                    CAST(:event_details AS TEXT[]), CAST(:event_times AS TIMESTAMPTZ[]))
             AS event(event_type, participant, details, occurred_at)
        WHERE EXISTS (SELECT 1 FROM changed))
    SELECT {TRANSFER_COLUMNS} FROM changed"""
_INSERT_TRANSFER = text(
    f"""
    WITH changed AS (
        INSERT INTO transactions (transaction_id, source_account_id, destination_account_id, amount, status,
                                  idempotency_key, request_fingerprint, requested_by, requested_by_customer_id)
        VALUES (:transaction_id, :source_account_id, :destination_account_id, :amount, 'preparing',
                :idempotency_key, :request_fingerprint, :requested_by, :requested_by_customer_id)
        ON CONFLICT DO NOTHING
        RETURNING {TRANSFER_COLUMNS})"""
    + _LOG_EVENTS
)
_SELECT_TRANSFER = text(f"SELECT {TRANSFER_COLUMNS} FROM transactions WHERE transaction_id = :transaction_id")
_SELECT_BY_IDEMPOTENCY_KEY = text(f"""
    SELECT {TRANSFER_COLUMNS} FROM transactions WHERE requested_by = :requested_by AND idempotency_key = :key""")
# The commit point: exactly one decision wins; a loser reads the stored one.
_DECIDE = text(
    f"""
    WITH changed AS (
        UPDATE transactions SET status = :status, reason = :reason, decided_at = now(), updated_at = now(),
                                next_attempt_at = now() + make_interval(secs => :completion_grace_s)
        WHERE transaction_id = :transaction_id AND status = 'preparing'
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
# One completion attempt, one statement: its events are logged whatever happened; when every participant
# acknowledged, the transfer is marked completed (and the `completed` event logged); otherwise the next
# attempt waits retry_first_s * 2^(attempts so far - 1), at most retry_max_s.
_RECORD_COMPLETION = text(f"""
    WITH changed AS (
        UPDATE transactions SET updated_at = now(),
            completed_at = CASE WHEN :all_acknowledged THEN now() END,
            next_attempt_at = CASE WHEN :all_acknowledged THEN next_attempt_at ELSE now() + make_interval(
                secs => LEAST(:retry_max_s, :retry_first_s * power(2, LEAST(GREATEST(completion_attempts - 1, 0),
                                                                              {BACKOFF_DOUBLINGS_MAX})))) END
        WHERE transaction_id = :transaction_id AND status <> 'preparing' AND completed_at IS NULL
        RETURNING {TRANSFER_COLUMNS}),
    logged AS (
        INSERT INTO transaction_events (transaction_id, event_type, participant, details, occurred_at)
        SELECT CAST(:transaction_id AS UUID), event.event_type, event.participant, CAST(event.details AS JSONB),
               event.occurred_at
        FROM unnest(CAST(:event_types AS TEXT[]), CAST(:event_participants AS TEXT[]),
                    CAST(:event_details AS TEXT[]), CAST(:event_times AS TIMESTAMPTZ[]))
             AS event(event_type, participant, details, occurred_at)
        WHERE event.event_type <> 'completed' OR EXISTS (SELECT 1 FROM changed WHERE completed_at IS NOT NULL))
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


def _event_params(transaction_id: UUID, events: list[Event]) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id,
        "event_types": [event.event_type.value for event in events],
        "event_participants": [event.participant for event in events],
        "event_details": [jsonio.dumps(event.details) for event in events],
        "event_times": [event.occurred_at for event in events],
    }


async def insert_transfer(
    connection: AsyncConnection,
    transaction_id: UUID,
    request: TransferRequest,
    events: list[Event],
    *,
    idempotency_key: str | None,
    requested_by: str,
    requested_by_customer_id: UUID | None,
) -> Transfer | None:
    """The new transfer with its first events, or None when its id or this caller's Idempotency-Key is taken.

    ON CONFLICT without a target covers both unique keys: the primary key (a client-named transfer) and
    (requested_by, idempotency_key). The database decides, so concurrent repeats on any replica meet here.
    """
    result = await connection.execute(
        _INSERT_TRANSFER,
        {
            **_event_params(transaction_id, events),
            "source_account_id": request.source_account_id,
            "destination_account_id": request.destination_account_id,
            "amount": request.amount,
            "idempotency_key": idempotency_key,
            "request_fingerprint": request.fingerprint(requested_by),
            "requested_by": requested_by,
            "requested_by_customer_id": requested_by_customer_id,
        },
    )
    return _transfer(result.first())


async def select_transfer(connection: AsyncConnection, transaction_id: UUID) -> Transfer | None:
    return _transfer((await connection.execute(_SELECT_TRANSFER, {"transaction_id": transaction_id})).first())


async def select_by_idempotency_key(connection: AsyncConnection, requested_by: str, key: str) -> Transfer | None:
    result = await connection.execute(_SELECT_BY_IDEMPOTENCY_KEY, {"requested_by": requested_by, "key": key})
    return _transfer(result.first())


async def store_decision(
    connection: AsyncConnection,
    transaction_id: UUID,
    decision: Decision,
    events: list[Event],
    *,
    completion_grace_s: float,
) -> Transfer | None:
    """Compare-and-set preparing -> decision, logging its events; None when another decision was stored first.

    Recovery leaves the transfer to the request that decided it for completion_grace_s.
    """
    result = await connection.execute(
        _DECIDE,
        {
            **_event_params(transaction_id, events),
            "status": decision.status.value,
            "reason": decision.reason.value if decision.reason else None,
            "completion_grace_s": completion_grace_s,
        },
    )
    return _transfer(result.first())


async def abort_orphans(connection: AsyncConnection, *, deadline_s: float, reason: str, limit: int) -> list[Transfer]:
    result = await connection.execute(_ABORT_ORPHANS, {"deadline_s": deadline_s, "reason": reason, "limit": limit})
    return [_transfer(row) for row in result]


async def claim_unfinished(connection: AsyncConnection, *, lease_s: float, limit: int) -> list[Transfer]:
    """Decided, unfinished transfers due for a completion attempt, leased for lease_s to this caller."""
    assert lease_s > 0, "a claim is a lease"
    result = await connection.execute(_CLAIM_UNFINISHED, {"lease_s": lease_s, "limit": limit})
    return [_transfer(row) for row in result]


async def record_completion(
    connection: AsyncConnection,
    transaction_id: UUID,
    events: list[Event],
    *,
    all_acknowledged: bool,
    retry_first_s: float,
    retry_max_s: float,
) -> Transfer | None:
    """Log a completion attempt's events; mark the transfer completed when every participant acknowledged,
    else schedule the next attempt with backoff.

    The completed transfer, or None when it was not completed now.
    """
    result = await connection.execute(
        _RECORD_COMPLETION,
        {
            **_event_params(transaction_id, events),
            "all_acknowledged": all_acknowledged,
            "retry_first_s": retry_first_s,
            "retry_max_s": retry_max_s,
        },
    )
    return _transfer(result.first())


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
