"""The one command line of every service: python -m <service> [serve|migrate|seed-demo].

Settings come from the environment; logging and failpoints are set up once, here, before anything runs.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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


class SettingsClass(Protocol):
    """A service's Settings class: one from_environ reads them all."""

    def from_environ(self, environ: Mapping[str, str]) -> Any: ...


@dataclass(frozen=True)
class ServiceCommands:
    """What differs between the services' command lines; its migrations are <package>/migrations.

    `seed(engine, settings)` loads the idempotent demo data; `extra_commands` are a service's own one-shot
    commands: name -> (settings, the arguments after the name), run without building an app.
    """

    package: str
    service_name: str
    settings: SettingsClass
    create_app: Callable[[Any], web.Application]
    seed: Callable[[AsyncEngine, Any], Awaitable[SeedReport]]
    log_file: str
    extra_commands: Mapping[str, Callable[[Any, list[str]], None]] = field(default_factory=dict)

    @property
    def migrations_dir(self) -> Path:
        return Path(str(importlib.import_module(self.package).__file__)).parent / "migrations"

    def main(self, argv: list[str] | None = None) -> None:
        arguments = argv if argv is not None else sys.argv[1:] or ["serve"]
        command = arguments[0]
        known = (*COMMANDS, *self.extra_commands)
        if command not in known:
            raise SystemExit(f"usage: python -m {self.package} [{'|'.join(known)}], not {command!r}")
        environ = process_environ()
        settings = self.settings.from_environ(environ)
        configure_logging(
            self.service_name, self.log_file, log_dir=settings.log_dir, console=True if settings.log_console else None
        )
        failpoints.configure(environ)
        if command in self.extra_commands:
            self.extra_commands[command](settings, arguments[1:])
        elif command == "migrate":
            migrate(self.migrations_dir, settings.database_url)
        elif command == "seed-demo" and not settings.demo_data:
            print(f"{self.package}: DEMO_DATA=false, no demo data (and no demo logins) loaded")
        elif command == "seed-demo":
            asyncio.run(_seed(self, settings))
        else:
            self._serve(settings)

    def _serve(self, settings: Any) -> None:
        try:
            app = self.create_app(settings)
        except KeyConfigurationError as error:
            raise SystemExit(f"{self.package} refuses to start: {error}") from None
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
