"""python -m accounts_service [serve|migrate|seed-demo]: settings from the environment."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from accounts_service.app import SERVICE_NAME, create_app
from accounts_service.settings import Settings
from shared.database import create_engine, migrate
from shared import failpoints
from shared.log import configure_logging
from shared.service_app import run_service
from shared.settings import process_environ

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def main(argv: list[str] | None = None) -> None:
    command = (argv if argv is not None else sys.argv[1:] or ["serve"])[0]
    settings = Settings.from_environ(process_environ())
    configure_logging(SERVICE_NAME, "accounts.log", log_dir=settings.log_dir,
                      console=True if settings.log_console else None)
    failpoints.configure(process_environ())
    if command == "migrate":
        migrate(MIGRATIONS_DIR, settings.database_url)
    elif command == "seed-demo":
        asyncio.run(_seed(settings))
    elif command == "serve":
        run_service(create_app(settings), settings.host, settings.port)
    else:
        raise SystemExit(f"usage: python -m accounts_service [serve|migrate|seed-demo], not {command!r}")


async def _seed(settings: Settings) -> None:
    from accounts_service import demo_data

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        await demo_data.seed(engine)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    main()
