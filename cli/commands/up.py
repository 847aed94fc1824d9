"""`banking-cli up`: the whole system on this machine, one command, Ctrl-C to stop.

A local PostgreSQL cluster in the data folder (kept between runs; --reset wipes it), the three
databases at their migration heads, the demo data, and the three services on 3001-3003.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from cli.core.config import local_secrets
from shared.failpoints import CRASH_EXIT_CODE

if TYPE_CHECKING:
    from harness.local_postgres import LocalPostgres
    from harness.system import LocalSystem

DEFAULT_DATA_DIR = Path(".data")
DEFAULT_POSTGRES_PORT = 55432
CHILD_POLL_S = 0.5
DEMO_LOGINS = (
    ("alice", "alice123", "customer, owns ...001 and ...002"),
    ("bob", "bob123", "customer, owns ...003 and ...004"),
    ("carol", "carol123", "customer, owns ...005"),
    ("teller", "teller123", "teller"),
    ("admin", "admin123", "admin"),
)

console = Console()


def up(
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, help="Where the PostgreSQL cluster keeps its data."),
    reset: bool = typer.Option(False, "--reset", help="Delete the data folder first: a fresh cluster and demo data."),
    postgres_port: int = typer.Option(DEFAULT_POSTGRES_PORT, help="Port of the local PostgreSQL cluster."),
    customer_port: int = typer.Option(3001),
    accounts_port: int = typer.Option(3002),
    transactions_port: int = typer.Option(3003),
    web_port: int = typer.Option(3000, help="Port of the web console."),
    log_dir: Path = typer.Option(Path("logs"), help="Where the services write their JSON logs."),
    demo_endpoints: bool = typer.Option(True, help="Serve the deliberately racy demo endpoint."),
) -> None:
    """Start PostgreSQL, migrate, seed the demo data and run the three services until Ctrl-C.

    Example: banking-cli up --reset
    """
    # harness starts processes; imported here so that ordinary commands never load it.
    from harness.local_postgres import LocalPostgres
    from harness.system import LocalSystem

    if reset and data_dir.exists():
        shutil.rmtree(data_dir)
    postgres = LocalPostgres(data_dir / "postgres", postgres_port, log_file=data_dir / "postgres.log")
    # Local development mode: random secrets made once per data folder (0600), read back by the CLI.
    keys = local_secrets(data_dir, create=True)
    assert keys is not None, "created when missing"
    system = LocalSystem(
        postgres,
        {
            "customer_service": customer_port,
            "accounts_service": accounts_port,
            "transactions_service": transactions_port,
        },
        log_dir=log_dir.resolve(),
        jwt_secret=os.environ.get("JWT_SECRET") or keys["jwt_secret"],
        service_token_secret=keys["service_token_secret"],
        coordinator_token_secret=keys["coordinator_token_secret"],
        demo_endpoints=demo_endpoints,
        dev_mode=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with console.status("starting PostgreSQL"):
            postgres.start()
        with console.status("creating databases, migrating, seeding demo data"):
            skipped = system.prepare(seed=True)
        for line in skipped:  # demo rows the API changed: the system starts without them
            console.print(f"[yellow]{line}[/]")
        with console.status("starting services"):
            system.start_all()
            system.start_console(web_port)
        _print_summary(system, postgres)
        _wait_until_stopped(system, stop, restart_crashed=demo_endpoints)
    finally:
        console.print("stopping services and PostgreSQL")
        system.stop_all()
        postgres.stop()


def _wait_until_stopped(system: LocalSystem, stop: threading.Event, *, restart_crashed: bool) -> None:
    """Until Ctrl-C or a process exits; in demo mode a failpoint crash (the console's demo panel) restarts it."""
    from harness.system import CONSOLE

    while not stop.wait(CHILD_POLL_S):
        for name, process in list(system.processes.items()):
            if process.poll() == CRASH_EXIT_CODE and restart_crashed and name != CONSOLE:
                console.print(f"[yellow]{name} crashed at a failpoint (demo); restarting it[/]")
                system.start(name, wait=False)
            elif process.poll() is not None:
                console.print(f"[red]{name} exited with {process.returncode}[/]; see {system.log_dir}/{name}.out")
                return


def _print_summary(system: LocalSystem, postgres: LocalPostgres) -> None:
    from harness.system import CONSOLE, SERVICES

    services = Table(title="Banking system is up", show_lines=False)
    for column in ("service", "url", "database"):
        services.add_column(column)
    for spec in SERVICES:
        services.add_row(spec.name, system.url(spec.name), system.database_url(spec.name))
    services.add_row("web console", system.url(CONSOLE), "")
    console.print(services)
    logins = Table(title="Demo logins (banking-cli login -u alice)")
    for column in ("username", "password", "who"):
        logins.add_column(column)
    for row in DEMO_LOGINS:
        logins.add_row(*row)
    console.print(logins)
    console.print(
        f"[bold]Open the console: {system.url(CONSOLE)}[/]  (log in as alice / alice123, or admin for the demo panel)"
    )
    console.print(f"logs: {system.log_dir}   PostgreSQL data: {postgres.data_dir}   stop: Ctrl-C")
    console.print(
        f"DEV_MODE: keys in {postgres.data_dir.parent / 'secrets.json'} (0600), read by banking-cli "
        "from this folder (BANKING_DATA_DIR for another)"
    )
