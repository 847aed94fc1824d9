"""The `banking-cli check` command: run the bank checker and print its report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()
# What the table shows, in order; every figure is also in the JSON report (--out).
REPORT_ROWS = (
    "transfers_attempted",
    "committed",
    "aborted",
    "indeterminate",
    "unavailable",
    "answers_500",
    "answers_503",
    "answers_5xx_other",
    "answered_outcome_unknown",
    "answered_wrong",
    "committed_per_s_fault_free",
    "committed_per_s_during_faults",
    "faults_injected",
    "faults_by_kind",
    "reads_checked",
    "locks_left",
    "unfinished_left",
    "time_to_quiesce_s",
)
FAULTS_SHOWN = 30


def check(
    seconds: float = typer.Option(60.0, "--seconds", "-s", min=1, help="How long the workload runs with faults."),
    fault_free: float = typer.Option(10.0, min=0, help="Seconds of workload without faults first (the base rate)."),
    clients: int = typer.Option(8, "--clients", "-c", min=1, max=256, help="Concurrent clients."),
    accounts: int = typer.Option(10, min=2, help="Accounts the clients move money between."),
    replicas: int = typer.Option(1, min=1, max=3, help="Replicas of the coordinator and of the participant."),
    database_faults: bool = typer.Option(
        False, "--db-faults/--no-db-faults", help="Also kill database connections and crash PostgreSQL."
    ),
    fault_every: float = typer.Option(
        3.0, "--fault-every", "--kill-every", min=0.2, help="Mean seconds between two faults."
    ),
    down_for: float = typer.Option(1.0, min=0, help="Seconds a killed process or a crashed PostgreSQL stays down."),
    seed: int = typer.Option(None, help="Random seed, for a reproducible schedule."),
    out: Path = typer.Option(None, help="Also write the report as JSON here."),
) -> None:
    """Jepsen-style bank check: transfers and reads under faults, then every invariant and every answer.

    Starts its own PostgreSQL cluster and services (it must own the processes it kills), so it never
    touches a running system. Exits 1 when any invariant is violated, anything is left locked, an answer
    was a 500, or an answer said otherwise than the coordinator log ("answered wrong").

    Example: banking-cli check --seconds 600 --replicas 2 --db-faults --fault-every 3.5
    """
    from harness.bank_check import CheckOptions, run_check
    from shared import jsonio

    options = CheckOptions(
        seconds=seconds,
        fault_free_s=fault_free,
        clients=clients,
        accounts=accounts,
        fault_every_s=fault_every,
        down_for_s=down_for,
        replicas=replicas,
        database_faults=database_faults,
        seed=seed,
    )
    with console.status("bank check running") as status:
        report = asyncio.run(
            run_check(
                options,
                progress=lambda r: status.update(
                    f"bank check running: {len(r.workload.attempts)} transfers, {len(r.faults)} faults so far"
                ),
            )
        )
    summary = report.as_dict()
    _print(summary)
    if out:
        out.write_text(jsonio.dumps(summary) + "\n")
    if (
        summary["violations"]
        or summary["locks_left"]
        or summary["unfinished_left"]
        or summary["answers_500"]
        or summary["answered_wrong"]
    ):
        raise typer.Exit(1)


def _print(summary: dict) -> None:
    table = Table(title="Bank check")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in REPORT_ROWS:
        table.add_row(key.replace("_", " "), str(summary[key]))
    table.add_row("invariant violations", str(len(summary["violations"])))
    console.print(table)
    for fault in summary["faults"][:FAULTS_SHOWN]:
        console.print(f"  fault: {fault}")
    if len(summary["faults"]) > FAULTS_SHOWN:
        console.print(f"  ... and {len(summary['faults']) - FAULTS_SHOWN} more faults (all in --out)")
    for wrong in summary["answered_wrong_examples"]:
        console.print(f"[red]  answered wrong: {wrong}[/]")
    for violation in summary["violations"]:
        console.print(f"[red]  violation: {violation}[/]")
    console.print("[green]no invariant violated[/]" if not summary["violations"] else "[red]INVARIANTS VIOLATED[/]")
