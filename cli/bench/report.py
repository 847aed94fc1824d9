"""The benchmark's outputs: a rich table, a JSON document and a PNG chart; and the per-process CPU probe."""
from __future__ import annotations

import os
import platform
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cli.bench.driver import RunResult
from shared import jsonio

PERCENTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))


def _fixed(value: float, places: int = 1) -> Decimal:
    return Decimal(f"{value:.{places}f}")


def run_summary(result: RunResult) -> dict:
    aborted = {reason: count for reason, count in result.outcomes.items()
               if reason != "committed" and not reason.startswith("error")}
    errors = {reason: count for reason, count in result.outcomes.items() if reason.startswith("error")}
    return {
        "target": result.target, "workload": result.workload, "clients": result.clients,
        "seconds": _fixed(result.seconds), "committed": result.outcomes["committed"],
        "committed_per_s": _fixed(result.committed_per_s),
        "aborted_per_s_by_reason": {reason: _fixed(count / result.seconds) for reason, count in aborted.items()},
        "errors": errors,
        "latency_ms": {name: _fixed(result.percentile_ms(fraction), 2) for name, fraction in PERCENTILES},
        "committed_per_second": result.committed_per_second,
        "cpu_seconds": {name: _fixed(value, 2) for name, value in result.cpu_seconds.items()},
        "money_conserved": result.money_conserved, "locks_left": result.locks_left,
    }


def ratios(results: list[RunResult]) -> dict[str, Decimal]:
    by_key = {(result.workload, result.target): result for result in results}
    return {workload: _fixed(by_key[(workload, "2pc")].committed_per_s / by_key[(workload, "baseline")].committed_per_s, 3)
            for workload, target in by_key if target == "2pc" and (workload, "baseline") in by_key
            and by_key[(workload, "baseline")].committed_per_s > 0}


def print_table(console: Console, results: list[RunResult]) -> None:
    table = Table(title="Committed transfers per second: 2PC over HTTP vs one local transaction")
    for column in ("workload", "target", "committed/s", "aborted/s by reason", "errors", "p50 ms", "p95 ms",
                   "p99 ms", "max ms", "money ok", "locks left"):
        table.add_column(column, justify="right" if column.endswith(("/s", "ms", "left")) else "left")
    for result in results:
        summary = run_summary(result)
        aborted = ", ".join(f"{reason} {rate}" for reason, rate in summary["aborted_per_s_by_reason"].items()) or "-"
        errors = ", ".join(f"{reason} {count}" for reason, count in summary["errors"].items()) or "-"
        table.add_row(result.workload, result.target, str(summary["committed_per_s"]), aborted, errors,
                      *(str(summary["latency_ms"][name]) for name, _ in PERCENTILES),
                      "yes" if result.money_conserved else "NO", str(result.locks_left))
    console.print(table)
    _print_cpu(console, results)
    for workload, ratio in ratios(results).items():
        console.print(f"[bold]{workload}[/]: 2PC reaches {ratio} of the single-database baseline")


def _print_cpu(console: Console, results: list[RunResult]) -> None:
    processes = sorted({name for result in results for name in result.cpu_seconds})
    if not processes:
        return
    table = Table(title="CPU seconds used during each measured run (warm-up included)")
    for column in ("workload", "target", *processes):
        table.add_column(column, justify="left" if column in ("workload", "target") else "right")
    for result in results:
        table.add_row(result.workload, result.target,
                      *(f"{result.cpu_seconds.get(name, 0.0):.2f}" for name in processes))
    console.print(table)


def write_json(path: Path, results: list[RunResult], settings: dict) -> None:
    document = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()},
                "settings": settings, "runs": [run_summary(result) for result in results],
                "ratio_2pc_to_baseline": ratios(results)}
    path.write_text(jsonio.dumps(document) + "\n")


def write_chart(path: Path, results: list[RunResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (throughput, latency) = pyplot.subplots(1, 2, figsize=(13, 4.8))
    for result in results:
        throughput.plot(range(len(result.committed_per_second) - 1), result.committed_per_second[:-1],
                        label=f"{result.workload} {result.target}")
    throughput.set(title="Committed transfers per second", xlabel="second", ylabel="committed/s")
    throughput.legend(fontsize=8)
    labels = [f"{result.workload}\n{result.target}" for result in results]
    width = 0.25
    for offset, (name, fraction) in enumerate(PERCENTILES[:3]):
        latency.bar([index + offset * width for index in range(len(results))],
                    [result.percentile_ms(fraction) for result in results], width, label=name)
    latency.set_xticks([index + width for index in range(len(results))], labels, fontsize=8)
    latency.set(title="Latency percentiles", ylabel="ms")
    latency.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def cpu_probe(ports: dict[str, int]) -> Callable[[], dict[str, float]]:
    """CPU seconds (user + system) of the processes listening on these ports, PostgreSQL with its backends."""
    import psutil

    listeners = {connection.laddr.port: connection.pid for connection in psutil.net_connections(kind="tcp")
                 if connection.status == psutil.CONN_LISTEN and connection.pid}
    processes = {name: psutil.Process(listeners[port]) for name, port in ports.items() if port in listeners}

    def probe() -> dict[str, float]:
        totals = {}
        for name, process in processes.items():
            family = [process, *process.children(recursive=True)] if name == "postgres" else [process]
            totals[name] = sum(_cpu(member) for member in family)
        return totals
    return probe


def _cpu(process) -> float:
    try:
        times = process.cpu_times()
    except Exception:  # a backend that exited between listing and reading
        return 0.0
    return times.user + times.system
