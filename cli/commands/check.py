"""The `banking-cli check` command: run the bank checker and print its report."""
from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def check(
    seconds: float = typer.Option(60.0, "--seconds", "-s", min=1, help="How long the workload and the kills run."),
    clients: int = typer.Option(8, "--clients", "-c", min=1, max=256, help="Concurrent clients."),
    accounts: int = typer.Option(10, min=2, help="Accounts the clients move money between."),
    kill_every: float = typer.Option(3.0, min=0.5, help="Mean seconds between SIGKILLs of a random service."),
    down_for: float = typer.Option(1.0, min=0, help="Seconds a killed service stays down."),
    seed: int = typer.Option(None, help="Random seed, for a reproducible schedule."),
    out: Path = typer.Option(None, help="Also write the report as JSON here."),
) -> None:
    """Jepsen-style bank check: transfers and reads under random process kills, then every invariant.

    Starts its own PostgreSQL cluster and services (it must own the processes it kills), so it never
    touches a running system. Exits 1 when any invariant is violated or anything is left locked.

    Example: banking-cli check --seconds 60 --kill-every 3
    """
    from harness.bank_check import CheckOptions, run_check
    from shared import jsonio

    options = CheckOptions(seconds=seconds, clients=clients, accounts=accounts, kill_every_s=kill_every,
                           down_for_s=down_for, seed=seed)
    with console.status("bank check running: clients, reads and SIGKILLs") as status:
        report = asyncio.run(run_check(options, progress=lambda r: status.update(
            f"bank check running: {sum(r.outcomes.values())} transfers, {len(r.faults)} kills so far")))
    summary = report.as_dict()
    _print(summary)
    if out:
        out.write_text(jsonio.dumps(summary) + "\n")
    if summary["violations"] or summary["locks_left"] or summary["unfinished_left"]:
        raise typer.Exit(1)


def _print(summary: dict) -> None:
    table = Table(title="Bank check")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("transfers_attempted", "committed", "aborted", "indeterminate", "unavailable", "faults_injected",
                "reads_checked", "locks_left", "unfinished_left", "time_to_quiesce_s"):
        table.add_row(key.replace("_", " "), str(summary[key]))
    table.add_row("invariant violations", str(len(summary["violations"])))
    console.print(table)
    for fault in summary["faults"]:
        console.print(f"  fault: {fault}")
    for violation in summary["violations"]:
        console.print(f"[red]  violation: {violation}[/]")
    console.print("[green]no invariant violated[/]" if not summary["violations"] else "[red]INVARIANTS VIOLATED[/]")
