"""`banking-cli bench`: committed transfers per second over HTTP and 2PC, beside the single-database baseline.

For each workload: open the workload's own customers and accounts (never the demo data), drive C
concurrent clients for T seconds after an uncounted warm-up, each transfer sent with the token of the
source account's owner, then check over HTTP that money was conserved and nothing is left locked. The
same transfer mix against one database (the baseline) runs in harness.bench_baseline, which drives it
with this module's `drive`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Required, TypedDict, Unpack

import aiohttp

from cli.bench.bank import SETUP_CONCURRENCY, BankOpener, BenchBank, bounded
from cli.bench.cpu import CpuProbe, cpu_delta
from cli.bench.workloads import Workload
from shared import jsonio

CLIENT_TIMEOUT_S = 30.0
# After a run, how long recovery may take to finish transfers whose completion failed, before the
# audit counts what is still locked.
AUDIT_SETTLE_S = 30.0
TICK_S = 0.5

SendTransfer = Callable[[int, int, Decimal], Awaitable[str]]


@dataclass
class RunResult:
    target: str
    workload: str
    clients: int
    seconds: float
    variant: str = ""  # which system: a service setting's value, an empty or loaded database
    outcomes: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    committed_per_second: list[int] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # over the measured window only
    money_conserved: bool | None = None
    locks_left: int | None = None

    @property
    def committed_per_s(self) -> float:
        return self.outcomes["committed"] / self.seconds

    @property
    def label(self) -> str:
        return " ".join(part for part in (self.variant, self.workload, self.target) if part)

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def drive(
    send: SendTransfer,
    workload: Workload,
    *,
    clients: int,
    seconds: float,
    warmup_s: float,
    seed: int,
    on_tick: Callable[[RunResult], None] | None = None,
    target: str,
    cpu_probe: CpuProbe | None = None,
) -> RunResult:
    """C clients send transfers back to back; those that finish inside the measured window (after the warm-up) count.

    Counting finishes, not starts, keeps the rate right when one transfer takes longer than the window
    (64 clients on a busy machine). CPU is read when the window opens and when it closes.
    """
    result = RunResult(target, workload.name, clients, seconds)
    result.committed_per_second = [0] * int(seconds + 1)
    started = time.perf_counter()
    measure_from, measure_until = started + warmup_s, started + warmup_s + seconds

    async def client(index: int) -> None:
        randomness = random.Random(seed * 1000 + index)
        while (now := time.perf_counter()) < measure_until:
            source, destination, amount = workload.next_transfer(randomness)
            outcome = await send(source, destination, amount)
            finished = time.perf_counter()
            if measure_from <= finished <= measure_until:
                result.outcomes[outcome] += 1
                result.latencies_ms.append((finished - now) * 1000)
                if outcome == "committed":
                    result.committed_per_second[int(finished - measure_from)] += 1

    async def ticker() -> None:
        while time.perf_counter() < measure_until:
            await asyncio.sleep(TICK_S)
            if on_tick:
                on_tick(result)

    async def cpu_window() -> None:
        assert cpu_probe is not None, "measured only with a probe"
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        before = cpu_probe()
        await asyncio.sleep(max(0.0, measure_until - time.perf_counter()))
        result.cpu_seconds = cpu_delta(before, cpu_probe())

    meters = [ticker(), *([cpu_window()] if cpu_probe else [])]
    await asyncio.gather(*meters, *(client(index) for index in range(clients)))
    return result


class SystemTarget:
    """The running banking system, over HTTP: one transfer, and the audit of the bench bank's accounts."""

    def __init__(self, opener: BankOpener, bank: BenchBank) -> None:
        self.opener = opener
        self.bank = bank

    async def transfer(self, source: int, destination: int, amount: Decimal) -> str:
        body = {
            "source_account_id": self.bank.account_ids[source],
            "destination_account_id": self.bank.account_ids[destination],
            "amount": amount,
        }
        try:
            status, answer = await self.opener.call(
                "POST", "transactions", "/transfers", body, headers=self.bank.transfer_headers[source]
            )
        except TimeoutError:
            return "error_timeout"
        except (aiohttp.ClientError, jsonio.JsonInputError):
            return "error_connection"
        if status == 200:
            return "committed"
        reason = ((answer.get("error") or {}).get("details") or {}).get("reason")
        return reason if status == 409 and reason else f"error_{status}"

    async def audit(self, workload: Workload) -> tuple[bool, int]:
        """(money conserved over the workload's accounts, accounts still locked), once recovery has had
        AUDIT_SETTLE_S to finish transfers whose completion failed during the run."""
        settle_until = time.monotonic() + AUDIT_SETTLE_S
        while True:
            rows = await bounded(self._read_account, len(self.bank.account_ids))
            locked = sum(1 for row in rows if row["transaction_lock"] is not None)
            if not locked or time.monotonic() > settle_until:
                break
            await asyncio.sleep(TICK_S)
        total = sum((row["balance"] for row in rows), Decimal(0))
        return total == workload.total_money, locked

    async def _read_account(self, index: int) -> dict:
        status, body = await self.opener.call("GET", "accounts", f"/accounts/{self.bank.account_ids[index]}")
        assert status == 200, body
        return body["data"]


class DriveOptions(TypedDict, total=False):
    """How the runs of one bench are driven (drive's keywords): the same for the system and the baseline."""

    clients: Required[int]
    seconds: Required[float]
    warmup_s: Required[float]
    seed: Required[int]
    cpu_probe: CpuProbe | None


async def run_system(
    urls: dict[str, str],
    jwt_secret: str,
    workload: Workload,
    *,
    caller: str = "customer",
    on_tick: Callable[[RunResult], None] | None = None,
    **run: Unpack[DriveOptions],
) -> RunResult:
    # One connection per client, and enough for the setup's bounded concurrency: no client ever waits
    # for the load generator's own pool.
    connector = aiohttp.TCPConnector(limit=max(run["clients"], SETUP_CONCURRENCY), limit_per_host=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    ) as session:
        opener = BankOpener(session, urls, jwt_secret)
        target = SystemTarget(opener, await opener.open(workload, caller))
        result = await drive(target.transfer, workload, target="2pc", on_tick=on_tick, **run)
        result.money_conserved, result.locks_left = await target.audit(workload)
    return result
