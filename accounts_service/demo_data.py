"""The demo accounts, with the fixed ids existing clients and scripts use.

Seeding is idempotent: an account that exists is left as it is (its balance may have moved since), and
one that cannot be opened is skipped and reported, never a failed start.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import db, service
from shared.demo_ids import ALICE, ALICE_MAIN, ALICE_SECOND, BOB, BOB_MAIN, BOB_SECOND, CAROL, CAROL_MAIN
from shared.seeding import SeedReport

DEMO_ACCOUNTS = (
    (ALICE_MAIN, ALICE, Decimal("1000")),
    (ALICE_SECOND, ALICE, Decimal("500")),
    (BOB_MAIN, BOB, Decimal("750")),
    (BOB_SECOND, BOB, Decimal("250")),
    (CAROL_MAIN, CAROL, Decimal("1500")),
)


async def seed(engine: AsyncEngine, _settings: object = None) -> SeedReport:
    """Open each demo account that does not exist yet; what was opened and what had to be skipped.
    (`seed-demo` passes every service's seed its settings; the accounts need none.)"""
    report = SeedReport()
    for account_id, customer_id, balance in DEMO_ACCOUNTS:
        async with engine.connect() as connection:
            exists = await db.select_account(connection, account_id) is not None
        if exists:
            continue
        try:
            await service.open_account(engine, customer_id, balance, account_id=account_id)
        except IntegrityError as error:  # opened by a concurrent seed since the look-up above
            report.skip(f"account {account_id}", type(error.orig).__name__)
            continue
        report.restored(f"account {account_id}")
    return report
