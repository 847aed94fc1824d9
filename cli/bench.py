"""`banking-cli bench`: committed transfers per second over HTTP and 2PC, beside the single-database baseline.

For each workload: open the workload's own accounts (never the demo data), drive C concurrent clients
for T seconds after an uncounted warm-up, check that money was conserved and nothing is left locked,
then run the same transfer mix as one local asyncpg transaction per transfer against one database.
"""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import aiohttp
import asyncpg

from cli.bench_baseline import Baseline, baseline_transfer
from cli.bench_workloads import Workload
from shared import jsonio
from shared.auth import issue_token

SETUP_CONCURRENCY = 32
BENCH_CUSTOMER = uuid.UUID("550e8400-e29b-41d4-a716-446655440001")
CLIENT_TIMEOUT_S = 30.0
# After a run, how long recovery may take to finish transfers whose completion failed, before the
# audit counts what is still locked.
AUDIT_SETTLE_S = 30.0

SendTransfer = Callable[[int, int, Decimal], Awaitable[str]]


@dataclass
class RunResult:
    target: str
    workload: str
    clients: int
    seconds: float
    outcomes: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    committed_per_second: list[int] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    money_conserved: bool | None = None
    locks_left: int | None = None

    @property
    def committed_per_s(self) -> float:
        return self.outcomes["committed"] / self.seconds

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def drive(send: SendTransfer, workload: Workload, *, clients: int, seconds: float, warmup_s: float,
                seed: int, on_tick: Callable[[RunResult], None] | None = None, target: str) -> RunResult:
    """C clients send transfers back to back; only those started after the warm-up and finished before the end count."""
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
            if now >= measure_from and finished <= measure_until:
                result.outcomes[outcome] += 1
                result.latencies_ms.append((finished - now) * 1000)
                if outcome == "committed":
                    result.committed_per_second[int(finished - measure_from)] += 1

    async def ticker() -> None:
        while time.perf_counter() < measure_until:
            await asyncio.sleep(0.5)
            if on_tick:
                on_tick(result)

    await asyncio.gather(ticker(), *(client(index) for index in range(clients)))
    return result


class SystemTarget:
    """The running banking system, over HTTP, with a teller token minted from JWT_SECRET."""

    def __init__(self, session: aiohttp.ClientSession, urls: dict[str, str], jwt_secret: str) -> None:
        self.session = session
        self.urls = urls
        # An admin: the bench opens accounts above a teller's opening-deposit cap.
        token = issue_token(jwt_secret, role="admin", ttl_s=24 * 3600)[0]
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.account_ids: list[str] = []

    async def _call(self, method: str, service: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        async with self.session.request(method, self.urls[service] + path, headers=self.headers,
                                        data=jsonio.dumps(body) if body is not None else None) as response:
            return response.status, jsonio.loads(await response.read() or b"{}")

    async def create_accounts(self, workload: Workload) -> None:
        async def open_one(_index: int) -> str:
            status, body = await self._call("POST", "accounts", "/accounts", {
                "customer_id": str(BENCH_CUSTOMER), "initial_balance": workload.opening_balance})
            if status != 201:
                raise RuntimeError(f"could not open a bench account: {status} {body}")
            return body["data"]["account_id"]
        self.account_ids = await _bounded(open_one, workload.accounts)

    async def transfer(self, source: int, destination: int, amount: Decimal) -> str:
        try:
            status, body = await self._call("POST", "transactions", "/transfers", {
                "source_account_id": self.account_ids[source], "destination_account_id": self.account_ids[destination],
                "amount": amount})
        except (aiohttp.ClientError, TimeoutError, jsonio.JsonInputError):
            return "error"
        if status == 200:
            return "committed"
        reason = ((body.get("error") or {}).get("details") or {}).get("reason")
        return reason if status == 409 and reason else f"error_{status}"

    async def audit(self, workload: Workload) -> tuple[bool, int]:
        """(money conserved over the workload's accounts, accounts still locked), once recovery has had
        AUDIT_SETTLE_S to finish transfers whose completion failed during the run."""
        settle_until = time.monotonic() + AUDIT_SETTLE_S
        while True:
            rows = await _bounded(self._read_account, len(self.account_ids))
            locked = sum(1 for row in rows if row["transaction_lock"] is not None)
            if not locked or time.monotonic() > settle_until:
                break
            await asyncio.sleep(0.5)
        total = sum((row["balance"] for row in rows), Decimal(0))
        return total == workload.total_money, locked

    async def _read_account(self, index: int) -> dict:
        status, body = await self._call("GET", "accounts", f"/accounts/{self.account_ids[index]}")
        assert status == 200, body
        return body["data"]


async def _bounded(work: Callable[[int], Awaitable], count: int) -> list:
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(index: int):
        async with gate:
            return await work(index)
    return list(await asyncio.gather(*(one(index) for index in range(count))))


async def run_system(urls: dict[str, str], jwt_secret: str, workload: Workload, *, clients: int, seconds: float,
                     warmup_s: float, seed: int, on_tick=None, cpu_probe=None) -> RunResult:
    connector = aiohttp.TCPConnector(limit=max(clients, SETUP_CONCURRENCY))
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)) as session:
        target = SystemTarget(session, urls, jwt_secret)
        await target.create_accounts(workload)
        cpu_before = cpu_probe() if cpu_probe else {}
        result = await drive(target.transfer, workload, clients=clients, seconds=seconds, warmup_s=warmup_s,
                             seed=seed, on_tick=on_tick, target="2pc")
        if cpu_probe:
            result.cpu_seconds = _cpu_delta(cpu_before, cpu_probe())
        result.money_conserved, result.locks_left = await target.audit(workload)
    return result


async def run_baseline(database_url: str, workload: Workload, *, clients: int, seconds: float, warmup_s: float,
                       seed: int, on_tick=None, cpu_probe=None) -> RunResult:
    pool = await asyncpg.create_pool(database_url, min_size=clients, max_size=clients)
    try:
        baseline = Baseline(pool)
        await baseline.create_accounts(workload.accounts, workload.opening_balance)
        cpu_before = cpu_probe() if cpu_probe else {}
        result = await drive(lambda s, d, a: baseline_transfer(baseline, s, d, a), workload, clients=clients,
                             seconds=seconds, warmup_s=warmup_s, seed=seed, on_tick=on_tick, target="baseline")
        if cpu_probe:
            result.cpu_seconds = _cpu_delta(cpu_before, cpu_probe())
        result.money_conserved = await baseline.total() == workload.total_money
        result.locks_left = 0
        await baseline.drop()
    finally:
        await pool.close()
    return result


def _cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before.get(name, 0.0), 2) for name in after}
