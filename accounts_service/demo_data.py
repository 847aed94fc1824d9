"""The demo accounts, with the fixed ids existing clients and scripts use. Seeding is idempotent."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import db, service
from shared.demo_ids import ALICE, ALICE_MAIN, ALICE_SECOND, BOB, BOB_MAIN, BOB_SECOND, CAROL, CAROL_MAIN

DEMO_ACCOUNTS = (
    (ALICE_MAIN, ALICE, Decimal("1000")),
    (ALICE_SECOND, ALICE, Decimal("500")),
    (BOB_MAIN, BOB, Decimal("750")),
    (BOB_SECOND, BOB, Decimal("250")),
    (CAROL_MAIN, CAROL, Decimal("1500")),
)


async def seed(engine: AsyncEngine) -> int:
    """Open each demo account that does not exist yet; how many were opened."""
    opened = 0
    for account_id, customer_id, balance in DEMO_ACCOUNTS:
        async with engine.connect() as connection:
            exists = await db.select_account(connection, account_id) is not None
        if not exists:
            await service.open_account(engine, customer_id, balance, account_id=account_id)
            opened += 1
    return opened
