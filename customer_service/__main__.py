"""python -m customer_service [serve|migrate|seed-demo|create-admin]: settings from the environment."""

from __future__ import annotations

from pathlib import Path

from customer_service import demo_data
from customer_service.app import SERVICE_NAME, create_app
from customer_service.first_admin import create_admin
from customer_service.passwords import Passwords
from customer_service.settings import Settings
from shared.service_main import ServiceCommands, run


def _seed(engine, settings: Settings):
    passwords = Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)
    return demo_data.seed(engine, passwords)


COMMANDS = ServiceCommands(
    package="customer_service",
    service_name=SERVICE_NAME,
    log_file="customers.log",
    settings_from_environ=Settings.from_environ,
    create_app=create_app,
    seed=_seed,
    migrations_dir=Path(__file__).parent / "migrations",
    extra_commands={"create-admin": create_admin},
)


def main(argv: list[str] | None = None) -> None:
    run(COMMANDS, argv)


if __name__ == "__main__":
    main()
