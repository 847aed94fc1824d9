"""DEMO ONLY: the deliberately racy withdrawal the demos use to show a lost update. Never on a transfer path."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import db
from accounts_service.domain import LedgerKind
from accounts_service.service import get_account, record_local_change
from shared.errors import ConflictError, InsufficientFundsError


async def unsafe_withdraw(engine: AsyncEngine, account_id: UUID, amount: Decimal, *, pause_s: float) -> dict[str, Any]:
    """DEMO ONLY: read, pause, write back, with no lock held: two concurrent calls lose an update."""
    row = await get_account(engine, account_id)
    if row["balance"] < amount:
        raise InsufficientFundsError("insufficient funds", details={"balance": row["balance"]})
    await asyncio.sleep(pause_s)
    try:
        async with engine.begin() as connection:
            updated = await db.set_balance(connection, account_id, row["balance"] - amount)
            await record_local_change(connection, account_id, -amount, LedgerKind.UNSAFE_WITHDRAWAL)
    except IntegrityError:
        raise ConflictError("balance changed under a prepared transfer") from None
    return updated
