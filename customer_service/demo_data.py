"""The demo customers and logins, with the fixed ids existing clients and scripts use. Seeding is idempotent."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from customer_service import db, service
from customer_service.domain import ContactInfo, Login, NewCustomer, Role
from customer_service.passwords import Passwords
from shared.demo_ids import ALICE, BOB, CAROL

DEMO_CUSTOMERS = (
    NewCustomer(ALICE, "Alice Johnson", "12 Harbour Street, Bristol BS1 4RW",
                ContactInfo("alice@example.com", "+44 117 496 0101")),
    NewCustomer(BOB, "Bob Smith", "48 Mill Lane, Leeds LS1 5DJ",
                ContactInfo("bob@example.com", "+44 113 496 0202")),
    NewCustomer(CAROL, "Carol Williams", "7 Castle Road, Edinburgh EH1 2NG",
                ContactInfo("carol@example.com", "+44 131 496 0303")),
)

# Demo passwords are public and shorter than domain.MIN_PASSWORD_LENGTH allows for new logins ("bob123"):
# they are written here directly and never pass through the API's password rule.
DEMO_LOGINS = (
    Login("alice", "alice123", Role.CUSTOMER, ALICE),
    Login("bob", "bob123", Role.CUSTOMER, BOB),
    Login("carol", "carol123", Role.CUSTOMER, CAROL),
    Login("teller", "teller123", Role.TELLER, None),
    Login("admin", "admin123", Role.ADMIN, None),
)


async def seed(engine: AsyncEngine, passwords: Passwords) -> int:
    """Create each demo customer and login that does not exist yet; how many rows were created."""
    created = 0
    for customer in DEMO_CUSTOMERS:
        async with engine.connect() as connection:
            exists = await db.customer_exists(connection, customer.customer_id)
        if not exists:
            await service.create_customer(engine, passwords, customer)
            created += 1
    for login in DEMO_LOGINS:
        async with engine.connect() as connection:
            taken = await db.username_taken(connection, login.username)
        if not taken:
            await service.create_login(engine, passwords, login)
            created += 1
    return created
