"""How fast this machine runs Python at the moment of a bench: a fixed loop, timed before and after the runs.

Every process of the system is Python or PostgreSQL on the same two cores, and this machine's speed moves
(by a third within a day, and by more than two between days). A run's ratio to its own baseline carries
that; its rates and CPU milliseconds do not. The reference says how fast the machine was, so figures of
different days can be read side by side instead of only within one hour.
"""

from __future__ import annotations

import time
from decimal import Decimal

# About 75 ms a repeat on this machine on a slow day (2026-12-04): long enough to time, short beside any run.
REFERENCE_LOOP_ITERATIONS = 500_000
# The fastest repeat is the one least disturbed by whatever else the machine was doing.
REFERENCE_REPEATS = 5


def python_reference_ms() -> Decimal:
    """Milliseconds of the fastest of REFERENCE_REPEATS runs of a fixed pure-Python loop (lower is faster)."""
    fastest_s = min(_one_loop_s() for _ in range(REFERENCE_REPEATS))
    return Decimal(f"{fastest_s * 1000:.2f}")


def _one_loop_s() -> float:
    started = time.perf_counter()
    total = 0
    for number in range(REFERENCE_LOOP_ITERATIONS):
        total += number ^ (number >> 3)
    elapsed = time.perf_counter() - started
    assert total > 0, "the loop ran"
    return elapsed
