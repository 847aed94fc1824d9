"""python -m accounts_service [serve|migrate|seed-demo]: settings from the environment."""

from __future__ import annotations

from accounts_service import demo_data
from accounts_service.app import SERVICE_NAME, create_app
from accounts_service.settings import Settings
from shared.service_main import ServiceCommands

COMMANDS = ServiceCommands(
    "accounts_service", SERVICE_NAME, Settings, create_app, demo_data.seed, log_file="accounts.log"
)
main = COMMANDS.main

if __name__ == "__main__":
    main()
