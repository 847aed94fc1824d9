"""The one command line of every service: python -m <service> [serve|migrate|seed-demo].

Settings come from the environment; logging and failpoints are set up once, here, before anything runs.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import failpoints
from shared.auth import KeyConfigurationError
from shared.database import create_engine, migrate
from shared.log import configure_logging
from shared.seeding import SeedReport
from shared.service_app import run_service
from shared.settings import process_environ

COMMANDS = ("serve", "migrate", "seed-demo")

log = structlog.get_logger()


@dataclass(frozen=True)
class ServiceCommands:
    """What differs between the services' command lines."""

    package: str
    service_name: str
    log_file: str
    settings_from_environ: Callable[[Mapping[str, str]], Any]
    create_app: Callable[[Any], web.Application]
    seed: Callable[[AsyncEngine, Any], Awaitable[SeedReport]]  # (engine, settings): idempotent demo data
    migrations_dir: Path
    # A service's own one-shot commands: name -> (settings, the arguments after the name); no app is built.
    extra_commands: Mapping[str, Callable[[Any, list[str]], None]] = field(default_factory=dict)


def run(service: ServiceCommands, argv: list[str] | None = None) -> None:
    arguments = argv if argv is not None else sys.argv[1:] or ["serve"]
    command = arguments[0]
    known = (*COMMANDS, *service.extra_commands)
    if command not in known:
        raise SystemExit(f"usage: python -m {service.package} [{'|'.join(known)}], not {command!r}")
    environ = process_environ()
    settings = service.settings_from_environ(environ)
    configure_logging(
        service.service_name, service.log_file, log_dir=settings.log_dir, console=True if settings.log_console else None
    )
    failpoints.configure(environ)
    if command in service.extra_commands:
        service.extra_commands[command](settings, arguments[1:])
    elif command == "migrate":
        migrate(service.migrations_dir, settings.database_url)
    elif command == "seed-demo" and not settings.demo_data:
        print(f"{service.package}: DEMO_DATA=false, no demo data (and no demo logins) loaded")
    elif command == "seed-demo":
        asyncio.run(_seed(service, settings))
    else:
        try:
            app = service.create_app(settings)
        except KeyConfigurationError as error:
            raise SystemExit(f"{service.package} refuses to start: {error}") from None
        run_service(app, settings.host, settings.port)


async def _seed(service: ServiceCommands, settings: Any) -> None:
    """Seed, then say on stdout what was skipped: the one who started the system should know."""
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        report = await service.seed(engine, settings)
    finally:
        await engine.dispose()
    for skipped in report.skipped:
        log.warning("demo_seed_skipped", details={"row": skipped})
    print("\n".join(report.lines(service.package)), flush=True)
