"""python -m accounts_service [serve|migrate|seed-demo]: settings from the environment."""

from __future__ import annotations

from pathlib import Path

from accounts_service import demo_data
from accounts_service.app import SERVICE_NAME, create_app
from accounts_service.settings import Settings
from shared.service_main import ServiceCommands, run

COMMANDS = ServiceCommands(
    package="accounts_service",
    service_name=SERVICE_NAME,
    log_file="accounts.log",
    settings_from_environ=Settings.from_environ,
    create_app=create_app,
    seed=lambda engine, _settings: demo_data.seed(engine),
    migrations_dir=Path(__file__).parent / "migrations",
)


def main(argv: list[str] | None = None) -> None:
    run(COMMANDS, argv)


if __name__ == "__main__":
    main()
