"""The `banking-cli bench` command: options, optional self-started system, progress display, outputs."""
from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cli.bench_workloads import WORKLOADS

DEFAULT_BASELINE_URL = "postgresql://postgres@127.0.0.1:55432/postgres"
# Off a terminal (a pipe, CI) rich would squeeze the tables into 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)


def bench(
    workload: list[str] = typer.Option(["uniform"], "--workload", "-w",
                                       help="uniform, hot, overdraft or all; repeat for several."),
    clients: int = typer.Option(16, "--clients", "-c", min=1, max=512, help="Concurrent clients."),
    seconds: float = typer.Option(30.0, "--seconds", "-s", min=1, help="Measured seconds per run."),
    warmup: float = typer.Option(3.0, help="Uncounted warm-up seconds before each run."),
    accounts: int = typer.Option(0, help="Override the workload's account count (0 keeps it)."),
    out: Path = typer.Option(Path("results.json"), help="Where to write the JSON results."),
    chart: Path = typer.Option(None, help="Where to write the PNG chart (default: next to --out)."),
    start: bool = typer.Option(False, "--start", help="Start a fresh system of its own instead of using one."),
    baseline_url: str = typer.Option(os.environ.get("BENCH_DATABASE_URL", DEFAULT_BASELINE_URL),
                                     help="PostgreSQL for the single-database baseline."),
    no_baseline: bool = typer.Option(False, "--no-baseline", help="Skip the baseline runs."),
    seed: int = typer.Option(1, help="Random seed of the transfer mix."),
) -> None:
    """Measure committed transfers/s of the 2PC system beside a single-database baseline.

    Examples:
      banking-cli bench --workload uniform --clients 16 --seconds 30
      banking-cli bench -w hot -w overdraft --start --out hot.json
    """
    names = list(WORKLOADS) if "all" in workload else workload
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        raise typer.BadParameter(f"unknown workload {unknown}; choose from {list(WORKLOADS)} or all")
    chosen = [WORKLOADS[name] if not accounts else WORKLOADS[name].__class__(
        name, accounts, WORKLOADS[name].opening_balance, WORKLOADS[name].overdraft_share) for name in names]
    results = asyncio.run(_run_all(chosen, clients=clients, seconds=seconds, warmup_s=warmup, start=start,
                                   baseline_url=None if no_baseline else baseline_url, seed=seed))
    from cli.bench_report import print_table, write_chart, write_json

    print_table(console, results)
    write_json(out, results, {"clients": clients, "seconds": str(seconds), "warmup_s": str(warmup), "seed": seed,
                              "workloads": names, "self_started": start})
    chart_path = chart or out.with_suffix(".png")
    write_chart(chart_path, results)
    console.print(f"results: {out}   chart: {chart_path}")
    problems = [r for r in results if r.money_conserved is False or (r.locks_left or 0) > 0]
    if problems:
        console.print("[red]money not conserved or locks left after a run[/]")
        raise typer.Exit(1)


async def _run_all(workloads, *, clients, seconds, warmup_s, start, baseline_url, seed):
    if not start:
        urls = _urls_from_environ()
        return await _measure(workloads, urls, os.environ.get("JWT_SECRET") or _default_secret(), clients=clients,
                              seconds=seconds, warmup_s=warmup_s, baseline_url=baseline_url, seed=seed,
                              ports=_ports(urls, baseline_url))
    from cli.local_postgres import LocalPostgres, free_port
    from cli.system import SERVICES, LocalSystem

    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    postgres = LocalPostgres(folder / "pg", free_port())
    system = LocalSystem(postgres, {spec.name: free_port() for spec in SERVICES}, folder / "logs",
                         jwt_secret=_default_secret(), demo_endpoints=False)
    try:
        with console.status("starting a fresh system for the benchmark"):
            await asyncio.to_thread(postgres.start)
            await asyncio.to_thread(system.prepare)
            await asyncio.to_thread(system.start_all)
        urls = {"customers": system.url("customer_service"), "accounts": system.url("accounts_service"),
                "transactions": system.url("transactions_service")}
        own_baseline = postgres.url("postgres") if baseline_url else None
        return await _measure(workloads, urls, system.jwt_secret, clients=clients, seconds=seconds,
                              warmup_s=warmup_s, baseline_url=own_baseline, seed=seed,
                              ports=_ports(urls, own_baseline or postgres.url("postgres")))
    finally:
        await asyncio.to_thread(system.stop_all)
        await asyncio.to_thread(postgres.stop)
        shutil.rmtree(folder, ignore_errors=True)


async def _measure(workloads, urls, jwt_secret, *, clients, seconds, warmup_s, baseline_url, seed, ports):
    from cli.bench import run_baseline, run_system
    from cli.bench_report import cpu_probe

    probe = cpu_probe(ports)
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[committed]} committed"),
                  TimeElapsedColumn(), console=console) as progress:
        for workload in workloads:
            runs = [("2pc", lambda tick, w=workload: run_system(
                urls, jwt_secret, w, clients=clients, seconds=seconds, warmup_s=warmup_s, seed=seed,
                on_tick=tick, cpu_probe=probe))]
            if baseline_url:
                runs.append(("baseline", lambda tick, w=workload: run_baseline(
                    baseline_url, w, clients=clients, seconds=seconds, warmup_s=warmup_s, seed=seed,
                    on_tick=tick, cpu_probe=probe)))
            for target, run in runs:
                task = progress.add_task(f"{workload.name} {target}", total=None, committed=0)
                result = await run(lambda r, task=task: progress.update(task, committed=r.outcomes["committed"]))
                progress.update(task, total=1, completed=1, committed=result.outcomes["committed"])
                results.append(result)
    return results


def _urls_from_environ() -> dict[str, str]:
    return {"customers": os.environ.get("CUSTOMER_SERVICE_URL", "http://127.0.0.1:3001"),
            "accounts": os.environ.get("ACCOUNTS_SERVICE_URL", "http://127.0.0.1:3002"),
            "transactions": os.environ.get("TRANSACTIONS_SERVICE_URL", "http://127.0.0.1:3003")}


def _ports(urls: dict[str, str], database_url: str | None) -> dict[str, int]:
    process_of = {"customers": "customer_service", "accounts": "accounts_service",
                  "transactions": "transactions_service"}
    ports = {process_of[name]: urlparse(url).port for name, url in urls.items()}
    if database_url:
        ports["postgres"] = urlparse(database_url).port or 5432
    return ports


def _default_secret() -> str:
    """The running system's user-token key: JWT_SECRET, the config, `banking-cli up`'s; else a fresh one."""
    from cli.config import load_config
    return os.environ.get("JWT_SECRET") or load_config().jwt_secret or secrets.token_urlsafe(32)
