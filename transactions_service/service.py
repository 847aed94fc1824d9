"""Read use cases over the coordinator log: one transfer with its events, histories, monitoring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.errors import NotFoundError, TransferNotFoundError
from transactions_service import db
from transactions_service.domain import Transfer, wire_status
from transactions_service.protocol import TransferStatus

MONITORING_BATCH_MAX = 500


async def get_transfer(engine: AsyncEngine, transaction_id: UUID) -> Transfer:
    async with engine.connect() as connection:
        transfer = await db.select_transfer(connection, transaction_id)
    if transfer is None:
        raise NotFoundError("transaction not found", details={"transaction_id": str(transaction_id)})
    return transfer


async def outcome_of(engine: AsyncEngine, transaction_id: UUID) -> Transfer:
    """The transfer, for a participant in doubt; no record is the positive TRANSFER_NOT_FOUND (presumed abort).

    Safe to presume abort on: the coordinator logs a transfer before it sends any prepare.
    """
    async with engine.connect() as connection:
        transfer = await db.select_transfer(connection, transaction_id)
    if transfer is None:
        raise TransferNotFoundError(transaction_id)
    return transfer


async def events_of(engine: AsyncEngine, transaction_id: UUID) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return await db.select_events(connection, transaction_id)


async def account_history(engine: AsyncEngine, account_id: UUID, limit: int, offset: int) -> list[Transfer]:
    async with engine.connect() as connection:
        return await db.select_account_history(connection, account_id, limit, offset)


async def by_status(engine: AsyncEngine, status: TransferStatus, limit: int, offset: int) -> list[Transfer]:
    async with engine.connect() as connection:
        return await db.select_by_status(connection, status, limit, offset)


async def unfinished_older_than(engine: AsyncEngine, minutes: int) -> list[Transfer]:
    before = datetime.now(UTC) - timedelta(minutes=minutes)
    async with engine.connect() as connection:
        return await db.select_unfinished(connection, before, MONITORING_BATCH_MAX)


async def stats(engine: AsyncEngine) -> dict[str, Any]:
    """The original's `{total, by_status: {pending, committed, aborted}, success_rate}`, and our detail per state."""
    async with engine.connect() as connection:
        rows = await db.select_stats(connection)
    detail: dict[str, dict[str, Any]] = {
        wire_status(status): {"transfers": 0, "unfinished": 0, "amount": Decimal(0)} for status in TransferStatus
    }
    for row in rows:
        detail[wire_status(TransferStatus(row["status"]))] = {
            "transfers": row["transfers"],
            "unfinished": row["unfinished"],
            "amount": row["amount"],
        }
    counts = {name: item["transfers"] for name, item in detail.items()}
    return {
        "total": sum(counts.values()),
        "by_status": counts,
        "success_rate": success_rate(counts),
        "unfinished": sum(item["unfinished"] for item in detail.values()),
        "by_status_detail": detail,
    }


def success_rate(counts: dict[str, int]) -> str:
    """Committed among decided transfers as the original wrote it: "66.67%", or "0%" when none is decided."""
    decided = counts[TransferStatus.COMMITTED.value] + counts[TransferStatus.ABORTED.value]
    if decided == 0:
        return "0%"
    return f"{Decimal(counts[TransferStatus.COMMITTED.value] * 100) / decided:.2f}%"
