"""Account use cases: open, read, list, and the admin adjustment (the racy demo withdrawal is in unsafe_demo.py)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accounts_service import db
from accounts_service.domain import LedgerKind
from shared.errors import AccountLockedError, NotFoundError
from shared.hot_sql import raw_connection

log = structlog.get_logger()

# The most accounts one owner lookup may name (400 VALIDATION_ERROR above it): a coordinator's batch of
# ownership checks fits (its BATCH_MAX_TRANSFERS is at most 256).
OWNER_LOOKUP_MAX = 256


def account_view(row: dict[str, Any]) -> dict[str, Any]:
    """The public JSON shape of an account."""
    return {
        key: row[key]
        for key in (
            "account_id",
            "customer_id",
            "balance",
            "transaction_lock",
            "pending_change",
            "created_at",
            "updated_at",
        )
    }


def effective_view(row: dict[str, Any]) -> dict[str, Any]:
    """Balance after every pending debit: what the customer can spend now."""
    pending = row["pending_change"] or Decimal(0)
    effective = row["balance"] + min(pending, Decimal(0))
    assert effective >= 0, "a prepared debit never exceeds the balance"
    view = {
        "account_id": row["account_id"],
        "balance": row["balance"],
        "pending_change": row["pending_change"],
        "effective_balance": effective,
        "transaction_lock": row["transaction_lock"],
        # The original system's names for the same facts; its transaction_id is there only when locked.
        "current_balance": row["balance"],
        "is_locked": row["transaction_lock"] is not None,
    }
    return {**view, "transaction_id": row["transaction_lock"]} if view["is_locked"] else view


async def open_account(
    engine: AsyncEngine, customer_id: UUID, initial_balance: Decimal, account_id: UUID | None = None
) -> dict[str, Any]:
    """A new account; its opening balance is the first row of its ledger."""
    account_id = account_id or uuid.uuid4()
    async with engine.begin() as connection:
        row = await db.insert_account(connection, account_id, customer_id, initial_balance)
        await record_local_change(connection, account_id, initial_balance, LedgerKind.OPENING)
    log.info("account_opened", details={"account_id": str(account_id), "customer_id": str(customer_id)})
    return row


async def record_local_change(
    connection: AsyncConnection, account_id: UUID, change: Decimal, kind: LedgerKind, *, reason: str | None = None
) -> None:
    """A ledger row for a change made here, not by a transfer: it gets a transaction id of its own."""
    await db.insert_ledger_row(
        connection, transaction_id=uuid.uuid4(), account_id=account_id, change=change, kind=kind, reason=reason
    )


async def get_account(engine: AsyncEngine, account_id: UUID) -> dict[str, Any]:
    async with engine.connect() as connection:
        row = await db.select_account(connection, account_id)
    if row is None:
        raise NotFoundError("account not found", details={"account_id": str(account_id)})
    return row


async def account_owners(engine: AsyncEngine, account_ids: list[UUID]) -> dict[UUID, UUID]:
    """The owner of each of these accounts that exists, in one statement: many ownership checks at once."""
    assert 0 < len(account_ids) <= OWNER_LOOKUP_MAX, "the schema bounds a lookup"
    async with raw_connection(engine) as connection:
        return await db.select_owners(connection, account_ids)


async def customer_accounts(engine: AsyncEngine, customer_id: UUID) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return await db.select_customer_accounts(connection, customer_id)


async def ledger(engine: AsyncEngine, account_id: UUID, limit: int, offset: int) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return await db.select_ledger(connection, account_id, limit, offset)


async def adjust_balance(engine: AsyncEngine, account_id: UUID, new_balance: Decimal, *, reason: str) -> dict[str, Any]:
    """Set a balance (admin); the difference is written to the ledger. Refused while a transfer holds the row."""
    async with engine.begin() as connection:
        row = await db.select_account(connection, account_id, for_update=True)
        if row is None:
            raise NotFoundError("account not found", details={"account_id": str(account_id)})
        if row["transaction_lock"] is not None:
            raise AccountLockedError(
                "account is locked by a transfer in progress",
                details={"transaction_lock": str(row["transaction_lock"])},
            )
        change = new_balance - row["balance"]
        updated = await db.set_balance(connection, account_id, new_balance)
        if change != 0:
            await record_local_change(connection, account_id, change, LedgerKind.ADJUSTMENT, reason=reason)
    log.info("balance_adjusted", details={"account_id": str(account_id), "change": str(change)})
    return updated
