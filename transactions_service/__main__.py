"""python -m transactions_service [serve|migrate|seed-demo]: settings from the environment."""

from __future__ import annotations

from shared.service_main import ServiceCommands
from transactions_service import demo_data
from transactions_service.app import SERVICE_NAME, create_app
from transactions_service.settings import Settings

COMMANDS = ServiceCommands(
    "transactions_service", SERVICE_NAME, Settings, create_app, demo_data.seed, log_file="transactions.log"
)
main = COMMANDS.main

if __name__ == "__main__":
    main()
