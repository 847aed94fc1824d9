"""python -m customer_service [serve|migrate|seed-demo|create-admin]: settings from the environment."""

from __future__ import annotations

from collections.abc import Awaitable

from sqlalchemy.ext.asyncio import AsyncEngine

from customer_service import demo_data
from customer_service.app import SERVICE_NAME, create_app
from customer_service.first_admin import create_admin
from customer_service.passwords import Passwords
from customer_service.settings import Settings
from shared.seeding import SeedReport
from shared.service_main import ServiceCommands


def _seed(engine: AsyncEngine, settings: Settings) -> Awaitable[SeedReport]:
    passwords = Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)
    return demo_data.seed(engine, passwords)


COMMANDS = ServiceCommands(
    "customer_service",
    SERVICE_NAME,
    Settings,
    create_app,
    _seed,
    log_file="customers.log",
    extra_commands={"create-admin": create_admin},
)
main = COMMANDS.main

if __name__ == "__main__":
    main()
