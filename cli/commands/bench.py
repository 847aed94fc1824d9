"""The `banking-cli bench` command: options, optional self-started systems (one per variant), progress, outputs."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cli.bench.bank import CALLERS
from cli.bench.machine import python_reference_ms
from cli.bench.variants import (
    DEFAULT_SCALE_ACCOUNTS,
    DEFAULT_SCALE_TRANSFERS,
    ScaleSize,
    Variant,
    parse_setting,
    variants,
)
from cli.bench.workloads import WORKLOADS, Workload

DEFAULT_BASELINE_URL = "postgresql://postgres@127.0.0.1:55432/postgres"
# Off a terminal (a pipe, CI) rich would squeeze the tables into 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)


@dataclass(frozen=True)
class RunOptions:
    clients: int
    seconds: float
    warmup_s: float
    seed: int
    caller: str
    baseline: bool


def bench(
    workload: list[str] = typer.Option(
        ["uniform"], "--workload", "-w", help="uniform, hot, overdraft or all; repeat for several."
    ),
    clients: int = typer.Option(16, "--clients", "-c", min=1, max=512, help="Concurrent clients."),
    seconds: float = typer.Option(30.0, "--seconds", "-s", min=1, help="Measured seconds per run."),
    warmup: float = typer.Option(3.0, help="Uncounted warm-up seconds before each run."),
    accounts: int = typer.Option(0, help="Override the workload's account count (0 keeps it)."),
    caller: str = typer.Option(
        "customer",
        help="Who sends the transfers: customer (each from its own account, "
        "the ownership check on the path) or teller.",
    ),
    out: Path = typer.Option(Path("results.json"), help="Where to write the JSON results."),
    chart: Path = typer.Option(None, help="Where to write the PNG chart (default: next to --out)."),
    start: bool = typer.Option(False, "--start", help="Start a fresh system of its own (one per variant)."),
    fsync: bool = typer.Option(True, "--fsync/--no-fsync", help="With --start: PostgreSQL durable, as `make up`."),
    service_env: list[str] = typer.Option(
        [], "--service-env", help="With --start: NAME=value for every service of every variant; repeat for several."
    ),
    compare_env: str = typer.Option(
        None,
        "--compare-env",
        help="With --start: NAME=v1,v2 runs a fresh system per value and reports them side by side.",
    ),
    scale: bool = typer.Option(
        False,
        "--scale",
        help="With --start: each variant also on databases preloaded with --scale-accounts and --scale-transfers.",
    ),
    scale_accounts: int = typer.Option(DEFAULT_SCALE_ACCOUNTS, min=2, help="Accounts the scale fixture loads."),
    scale_transfers: int = typer.Option(DEFAULT_SCALE_TRANSFERS, min=0, help="Transfers the scale fixture loads."),
    baseline_url: str = typer.Option(
        os.environ.get("BENCH_DATABASE_URL", DEFAULT_BASELINE_URL), help="PostgreSQL for the single-database baseline."
    ),
    no_baseline: bool = typer.Option(False, "--no-baseline", help="Skip the baseline runs."),
    seed: int = typer.Option(1, help="Random seed of the transfer mix."),
) -> None:
    """Measure committed transfers/s and CPU per transfer of the 2PC system beside a single-database baseline.

    Examples:
      banking-cli bench --workload uniform --clients 16 --seconds 30
      banking-cli bench -w all --clients 64 --start --out all.json
      banking-cli bench --start --compare-env BATCH_MAX_TRANSFERS=1,16
      banking-cli bench --start --scale --seconds 20
    """
    chosen = _workloads(workload, accounts)
    if caller not in CALLERS:
        raise typer.BadParameter(f"--caller is one of {', '.join(CALLERS)}")
    if scale and scale_transfers % 2:
        raise typer.BadParameter("--scale-transfers must be even: the fixture loads them in pairs, there and back")
    if not start and (compare_env or scale or service_env):
        raise typer.BadParameter("--compare-env, --scale and --service-env start systems: add --start")
    try:
        planned = variants(compare_env, ScaleSize(scale_accounts, scale_transfers) if scale else None)
        common_env = dict(parse_setting(text) for text in service_env)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    options = RunOptions(clients, seconds, warmup, seed, caller, not no_baseline)
    reference_before_ms = python_reference_ms()
    if start:
        results, extra = asyncio.run(_run_fresh(chosen, planned, options, fsync=fsync, service_env=common_env))
    else:
        results, extra = asyncio.run(_run_existing(chosen, options, baseline_url)), {}
    speed = {"python_reference_ms": {"before": reference_before_ms, "after": python_reference_ms()}}
    settings = {
        "clients": clients,
        "seconds": str(seconds),
        "warmup_s": str(warmup),
        "seed": seed,
        "workloads": [w.name for w in chosen],
        "caller": caller,
        "self_started": start,
        "fsync": fsync if start else None,
        "service_env": common_env,
        "variants": [
            {"label": v.label, "service_env": v.service_env, "preload": v.preload and vars(v.preload)} for v in planned
        ],
    }
    _report(results, settings, speed, extra, out, chart)


def _workloads(names: list[str], accounts: int) -> list[Workload]:
    names = list(WORKLOADS) if "all" in names else names
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        raise typer.BadParameter(f"unknown workload {unknown}; choose from {list(WORKLOADS)} or all")
    return [WORKLOADS[name].with_accounts(accounts) for name in names]


def _report(results, settings: dict, speed: dict, extra: dict, out: Path, chart: Path | None) -> None:
    from cli.bench.report import print_table, write_chart, write_json

    print_table(console, results)
    for label, plans in extra.get("hot_path_plans", {}).items():
        _print_plans(label, plans)
    reference = speed["python_reference_ms"]
    console.print(
        f"machine speed: a fixed Python loop took {reference['before']} ms before the runs and "
        f"{reference['after']} ms after (lower is faster; compare rates of different days by it)"
    )
    write_json(out, results, settings, extra, speed=speed)
    chart_path = chart or out.with_suffix(".png")
    write_chart(chart_path, results)
    console.print(f"results: {out}   chart: {chart_path}")
    if any(r.money_conserved is False or (r.locks_left or 0) > 0 for r in results):
        console.print("[red]money not conserved or locks left after a run[/]")
        raise typer.Exit(1)


def _print_plans(label: str, plans: list[dict]) -> None:
    from rich.table import Table

    table = Table(title=f"Plans of the transfer's statements on the {label} databases")
    for column in ("service", "statement", "sequential scans", "tables read or written (all nodes in the JSON)"):
        table.add_column(column)
    for plan in plans:
        touched = [node for node in plan["nodes"] if " on " in node or " using " in node]
        table.add_row(
            plan["service"], plan["statement"], ", ".join(plan["scans"]) or "none", ", ".join(dict.fromkeys(touched))
        )
    console.print(table)


async def _run_existing(workloads: list[Workload], options: RunOptions, baseline_url: str):
    urls = _urls_from_environ()
    jwt_secret = os.environ.get("JWT_SECRET") or _default_secret()
    return await _measure(workloads, urls, jwt_secret, options, baseline_url=baseline_url, variant=Variant())


async def _run_fresh(
    workloads: list[Workload], planned: list[Variant], options: RunOptions, *, fsync: bool, service_env: dict[str, str]
):
    from cli.bench.fresh import fresh_system

    results, plans, preload_s = [], {}, {}
    for variant in planned:
        async with fresh_system(
            variant, jwt_secret=_default_secret(), fsync=fsync, service_env=service_env, status=console.status
        ) as running:
            if variant.preload:
                plans[variant.label] = await _hot_path_plans(running)
                preload_s[variant.label] = running.preload_s
            results += await _measure(
                workloads, running.urls, running.jwt_secret, options, baseline_url=running.postgres_url, variant=variant
            )
    return results, ({"hot_path_plans": plans, "preload_seconds": preload_s} if plans else {})


async def _hot_path_plans(running) -> list[dict]:
    from harness.hot_path_plans import explain_hot_path

    return await explain_hot_path(running.database_urls)


async def _measure(
    workloads: list[Workload],
    urls: dict[str, str],
    jwt_secret: str,
    options: RunOptions,
    *,
    baseline_url: str,
    variant: Variant,
):
    from cli.bench.cpu import cpu_probe
    from cli.bench.driver import DriveOptions, run_system
    from harness.bench_baseline import run_baseline  # reads one database directly: only for this command

    probe = cpu_probe(_ports(urls, baseline_url))
    common: DriveOptions = {
        "clients": options.clients,
        "seconds": options.seconds,
        "warmup_s": options.warmup_s,
        "seed": options.seed,
        "cpu_probe": probe,
    }
    results = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[committed]} committed"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        for workload in workloads:
            runs = [
                (
                    "2pc",
                    lambda tick, w=workload: run_system(
                        urls, jwt_secret, w, caller=options.caller, on_tick=tick, **common
                    ),
                )
            ]
            if options.baseline:
                runs.append(
                    ("baseline", lambda tick, w=workload: run_baseline(baseline_url, w, on_tick=tick, **common))
                )
            for target, run in runs:
                task = progress.add_task(
                    " ".join(p for p in (variant.label, workload.name, target) if p), total=None, committed=0
                )
                result = await run(lambda r, task=task: progress.update(task, committed=r.outcomes["committed"]))
                progress.update(task, total=1, completed=1, committed=result.outcomes["committed"])
                result.variant = variant.label
                results.append(result)
    return results


def _urls_from_environ() -> dict[str, str]:
    return {
        "customers": os.environ.get("CUSTOMER_SERVICE_URL", "http://127.0.0.1:3001"),
        "accounts": os.environ.get("ACCOUNTS_SERVICE_URL", "http://127.0.0.1:3002"),
        "transactions": os.environ.get("TRANSACTIONS_SERVICE_URL", "http://127.0.0.1:3003"),
    }


def _ports(urls: dict[str, str], database_url: str) -> dict[str, int]:
    """The listening port of each measured process; PostgreSQL's is the baseline's cluster (that of `make up`)."""
    from cli.bench.cpu import COORDINATOR, CUSTOMER_SERVICE, PARTICIPANT, POSTGRES

    process_of = {"customers": CUSTOMER_SERVICE, "accounts": PARTICIPANT, "transactions": COORDINATOR}
    # A URL without a port names no listener to measure (cpu_probe would find none for it either).
    ports = {process_of[name]: port for name, url in urls.items() if (port := urlparse(url).port) is not None}
    ports[POSTGRES] = urlparse(database_url).port or 5432
    return ports


def _default_secret() -> str:
    """The running system's user-token key: JWT_SECRET, the config, `banking-cli up`'s; else a fresh one."""
    from cli.core.config import load_config

    return os.environ.get("JWT_SECRET") or load_config().jwt_secret or secrets.token_urlsafe(32)
