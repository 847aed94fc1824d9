"""The demo customers and logins, with the fixed ids existing clients and scripts use.

Seeding is idempotent and never fails on what the API changed: a demo customer whose email now belongs
to someone else, or a login whose username or customer is gone, is skipped and reported.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from customer_service import db, service
from customer_service.domain import ContactInfo, Login, NewCustomer, Role
from customer_service.passwords import Passwords
from shared.demo_ids import ALICE, BOB, CAROL
from shared.errors import ConflictError
from shared.seeding import SeedReport

DEMO_CUSTOMERS = (
    NewCustomer(
        ALICE,
        "Alice Johnson",
        "12 Harbour Street, Bristol BS1 4RW",
        ContactInfo("alice@example.com", "+44 117 496 0101"),
    ),
    NewCustomer(BOB, "Bob Smith", "48 Mill Lane, Leeds LS1 5DJ", ContactInfo("bob@example.com", "+44 113 496 0202")),
    NewCustomer(
        CAROL,
        "Carol Williams",
        "7 Castle Road, Edinburgh EH1 2NG",
        ContactInfo("carol@example.com", "+44 131 496 0303"),
    ),
)
DEMO_CUSTOMER_NAMES = {customer.customer_id: customer.name for customer in DEMO_CUSTOMERS}

# Demo passwords are public and shorter than domain.MIN_PASSWORD_LENGTH allows for new logins ("bob123"):
# they are written here directly and never pass through the API's password rule.
DEMO_LOGINS = (
    Login("alice", "alice123", Role.CUSTOMER, ALICE),
    Login("bob", "bob123", Role.CUSTOMER, BOB),
    Login("carol", "carol123", Role.CUSTOMER, CAROL),
    Login("teller", "teller123", Role.TELLER, None),
    Login("admin", "admin123", Role.ADMIN, None),
)


async def seed(engine: AsyncEngine, passwords: Passwords) -> SeedReport:
    """Create each demo customer and login that is missing; what was created and what had to be skipped."""
    report = SeedReport()
    for customer in DEMO_CUSTOMERS:
        await _restore_customer(engine, passwords, customer, report)
    for login in DEMO_LOGINS:
        await _restore_login(engine, passwords, login, report)
    return report


async def _restore_customer(
    engine: AsyncEngine, passwords: Passwords, customer: NewCustomer, report: SeedReport
) -> None:
    if await service.customer_exists(engine, customer.customer_id):
        return
    try:
        await service.create_customer(engine, passwords, customer)
    except ConflictError as error:  # its email was given to another customer through the API
        report.skip(f"customer {customer.name}", error.message)
        return
    report.restored(f"customer {customer.name}")


async def _restore_login(engine: AsyncEngine, passwords: Passwords, login: Login, report: SeedReport) -> None:
    async with engine.connect() as connection:
        existing = await db.select_login(connection, login.username)
    if existing is not None:
        if (existing["role"], existing["customer_id"]) != (login.role.value, login.customer_id):
            report.skip(f"login {login.username}", "the username belongs to another login")
        return
    if login.customer_id is not None and not await service.customer_exists(engine, login.customer_id):
        report.skip(f"login {login.username}", f"its customer {DEMO_CUSTOMER_NAMES[login.customer_id]} is missing")
        return
    try:
        await service.create_login(engine, passwords, login)
    except ConflictError as error:  # created by someone else since the look-up above
        report.skip(f"login {login.username}", error.message)
        return
    report.restored(f"login {login.username}")
