"""The benchmark's outputs: rich tables, a JSON document and a PNG chart, runs of several variants side by side."""

from __future__ import annotations

import os
import platform
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cli.bench.cpu import PROCESSES, SYSTEM_PROCESSES, TOTAL
from cli.bench.driver import RunResult
from shared import jsonio

PERCENTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
CHART_SIZE_IN = (19, 5.2)
CHART_DPI = 110
SYMLOG_LINEAR_BELOW = 10  # committed/s: below this the throughput axis is linear, so a zero second shows


def _fixed(value: float, places: int = 1) -> Decimal:
    return Decimal(f"{value:.{places}f}")


def cpu_ms_per_committed(result: RunResult) -> dict[str, Decimal]:
    """CPU milliseconds each process spent per committed transfer in the measured window, and the system's total."""
    committed = result.outcomes["committed"]
    if not committed or not result.cpu_seconds:
        return {}
    per_process = {
        name: result.cpu_seconds[name] * 1000 / committed for name in PROCESSES if name in result.cpu_seconds
    }
    per_process[TOTAL] = sum(per_process.get(name, 0.0) for name in SYSTEM_PROCESSES)
    return {name: _fixed(value, 3) for name, value in per_process.items()}


def run_summary(result: RunResult) -> dict:
    aborted = {
        reason: count
        for reason, count in result.outcomes.items()
        if reason != "committed" and not reason.startswith("error")
    }
    errors = {reason: count for reason, count in result.outcomes.items() if reason.startswith("error")}
    return {
        "variant": result.variant,
        "target": result.target,
        "workload": result.workload,
        "clients": result.clients,
        "seconds": _fixed(result.seconds),
        "committed": result.outcomes["committed"],
        "committed_per_s": _fixed(result.committed_per_s),
        "aborted_per_s_by_reason": {reason: _fixed(count / result.seconds) for reason, count in aborted.items()},
        "errors": errors,
        "latency_ms": {name: _fixed(result.percentile_ms(fraction), 2) for name, fraction in PERCENTILES},
        "committed_per_second": result.committed_per_second,
        "cpu_seconds": {name: _fixed(value, 3) for name, value in result.cpu_seconds.items()},
        "cpu_ms_per_committed": cpu_ms_per_committed(result),
        "money_conserved": result.money_conserved,
        "locks_left": result.locks_left,
    }


def _run_key(result: RunResult) -> str:
    return " ".join(part for part in (result.variant, result.workload) if part)


def ratios(results: list[RunResult]) -> dict[str, Decimal]:
    """2PC committed/s over the same variant's baseline, by '[variant ]workload'."""
    by_key = {(_run_key(result), result.target): result for result in results}
    return {
        key: _fixed(by_key[(key, "2pc")].committed_per_s / by_key[(key, "baseline")].committed_per_s, 3)
        for key, target in by_key
        if target == "2pc" and (key, "baseline") in by_key and by_key[(key, "baseline")].committed_per_s > 0
    }


def print_table(console: Console, results: list[RunResult]) -> None:
    table = Table(title="Committed transfers per second: 2PC over HTTP vs one local transaction")
    variants = any(result.variant for result in results)
    for column in (
        *(("variant",) if variants else ()),
        "workload",
        "target",
        "committed/s",
        "aborted/s by reason",
        "errors",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "money ok",
        "locks left",
    ):
        table.add_column(column, justify="right" if column.endswith(("/s", "ms", "left")) else "left")
    for result in results:
        summary = run_summary(result)
        aborted = ", ".join(f"{reason} {rate}" for reason, rate in summary["aborted_per_s_by_reason"].items()) or "-"
        errors = ", ".join(f"{reason} {count}" for reason, count in summary["errors"].items()) or "-"
        table.add_row(
            *((result.variant,) if variants else ()),
            result.workload,
            result.target,
            str(summary["committed_per_s"]),
            aborted,
            errors,
            *(str(summary["latency_ms"][name]) for name, _ in PERCENTILES),
            "yes" if result.money_conserved else "NO",
            str(result.locks_left),
        )
    console.print(table)
    _print_cpu(console, results, variants)
    for key, ratio in ratios(results).items():
        console.print(f"[bold]{key}[/]: 2PC reaches {ratio} of the single-database baseline")


def _print_cpu(console: Console, results: list[RunResult], variants: bool) -> None:
    rows = [(result, cpu_ms_per_committed(result)) for result in results]
    columns = [name for name in (*PROCESSES, TOTAL) if any(name in figures for _, figures in rows)]
    if not columns:
        return
    table = Table(
        title="CPU milliseconds per committed transfer, measured window only "
        f"({TOTAL} = every process but the load generator)"
    )
    for column in (*(("variant",) if variants else ()), "workload", "target", *columns):
        table.add_column(column, justify="left" if column in ("variant", "workload", "target") else "right")
    for result, figures in rows:
        table.add_row(
            *((result.variant,) if variants else ()),
            result.workload,
            result.target,
            *(str(figures.get(name, "-")) for name in columns),
        )
    console.print(table)


def write_json(
    path: Path, results: list[RunResult], settings: dict, extra: dict | None = None, *, speed: dict | None = None
) -> None:
    """`speed`: how fast the machine ran (cli/bench/machine.py), kept with the machine's other facts."""
    document = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            **(speed or {}),
        },
        "settings": settings,
        "runs": [run_summary(result) for result in results],
        "ratio_2pc_to_baseline": ratios(results),
        **(extra or {}),
    }
    path.write_text(jsonio.dumps(document) + "\n")


def write_chart(path: Path, results: list[RunResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (throughput, latency, cpu) = pyplot.subplots(1, 3, figsize=CHART_SIZE_IN)
    for result in results:
        throughput.plot(
            range(len(result.committed_per_second) - 1), result.committed_per_second[:-1], label=result.label
        )
    # Logarithmic: the baseline runs ten to a hundred times faster, and a linear axis would flatten the 2PC runs.
    throughput.set_yscale("symlog", linthresh=SYMLOG_LINEAR_BELOW)
    throughput.set(title="Committed transfers per second (log scale)", xlabel="second", ylabel="committed/s")
    throughput.legend(fontsize=7)
    labels = [result.label.replace(" ", "\n") for result in results]
    width = 0.25
    for offset, (name, fraction) in enumerate(PERCENTILES[:3]):
        latency.bar(
            [index + offset * width for index in range(len(results))],
            [result.percentile_ms(fraction) for result in results],
            width,
            label=name,
        )
    latency.set_xticks([index + width for index in range(len(results))], labels, fontsize=7)
    latency.set(title="Latency percentiles", ylabel="ms")
    latency.legend()
    _cpu_bars(cpu, results, labels)
    figure.tight_layout()
    figure.savefig(path, dpi=CHART_DPI)
    pyplot.close(figure)


def _cpu_bars(axes, results: list[RunResult], labels: list[str]) -> None:
    """One stacked bar per run: each process's CPU ms per committed transfer."""
    figures = [cpu_ms_per_committed(result) for result in results]
    bottoms = [0.0] * len(results)
    for name in PROCESSES:
        heights = [float(run.get(name, 0)) for run in figures]
        if any(heights):
            axes.bar(range(len(results)), heights, 0.6, bottom=bottoms, label=name)
            bottoms = [bottom + height for bottom, height in zip(bottoms, heights, strict=True)]
    axes.set_xticks(range(len(results)), labels, fontsize=7)
    axes.set(title="CPU ms per committed transfer", ylabel="ms")
    if any(bottoms):
        axes.legend(fontsize=7)
