"""`banking-cli health`: each service's /health, its database status and the latency seen from here."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import typer

from cli.core.client import SERVICE_LABELS, Client
from cli.core.config import load_config
from cli.core.errors import CliError, UnavailableError

SERVICES = ("customer", "accounts", "transactions")
STATUS_STYLES = {"healthy": "green", "unhealthy": "yellow", "unreachable": "red"}
# Keyed by whatever JSON `database.connected` held: only true and false name a state.
DATABASE_STATE_OF_CONNECTED: dict[object, str] = {True: "up", False: "down"}


def check_service(client: Client, service: str) -> dict[str, Any]:
    """One service's health as a row: healthy, unhealthy (answers, database down) or unreachable."""
    row: dict[str, Any] = {
        "service": service,
        "url": client.config.url(service),
        "status": "unreachable",
        "database": "unknown",
        "database_latency_ms": None,
        "latency_ms": None,
        "error": None,
    }
    try:
        reply = client.request(service, "GET", "/health")
    except CliError as error:
        return {**row, "error": error.message}
    data = reply.data or {}  # a 503 carries `data` too: status "unhealthy", database.connected false
    database = data.get("database")
    connected = database.get("connected") if isinstance(database, dict) else None
    return {
        **row,
        "status": "healthy" if reply.ok else "unhealthy",
        "database": DATABASE_STATE_OF_CONNECTED.get(connected, "unknown"),
        "database_latency_ms": data.get("database_latency_ms"),
        "latency_ms": Decimal(f"{reply.elapsed_ms:.1f}"),
        "error": None if reply.ok else reply.error.get("message", f"HTTP {reply.status}"),
    }


def health(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """Check all three services: up or not, database status, latency. Exit 6 when any is not healthy.

    Examples:
      banking-cli health
      banking-cli health --json | jq -r '.[] | select(.status!="healthy") | .service'
    """
    client = Client(load_config())
    with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
        rows = list(pool.map(lambda service: check_service(client, service), SERVICES))
    if as_json:
        from cli.core.render import print_json

        print_json(rows)
    else:
        _print_rows(rows)
    unhealthy = [row["service"] for row in rows if row["status"] != "healthy"]
    if unhealthy:
        raise UnavailableError(
            f"{len(unhealthy)} of {len(rows)} services not healthy: "
            f"{', '.join(SERVICE_LABELS[name] for name in unhealthy)}"
        )


def _print_rows(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from cli.core.render import console

    table = Table(title="Service health", title_justify="left")
    for column in ("service", "status", "database", "db latency", "latency", "url / problem"):
        table.add_column(
            column,
            justify="right" if "latency" in column else "left",
            overflow="fold" if "url" in column else "ellipsis",
            no_wrap="url" not in column,
        )
    for row in rows:
        style = STATUS_STYLES[row["status"]]
        database_style = "green" if row["database"] == "up" else "red"
        table.add_row(
            row["service"],
            f"[{style}]{row['status']}[/]",
            f"[{database_style}]{row['database']}[/]",
            _ms(row["database_latency_ms"]),
            _ms(row["latency_ms"]),
            row["url"] if row["error"] is None else f"[red]{row['error']}[/]",
        )
    console.print(table)


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value} ms"
