"""The bank checker's nemesis: the faults real deployments meet, one at a time, on a jittered clock.

    kill       SIGKILL one service process (any replica of the coordinator or the participant), restart it
    terminate  pg_terminate_backend every connection to one service's database (a failover, a DBA, a proxy)
    crash      PostgreSQL stopped with `pg_ctl stop -m immediate` (no checkpoint: crash recovery on start)
               and started again; every service sees its connections die and the server refuse for a while

Faults are drawn from a shuffled bag, so each kind comes up every round and a short run meets them all.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from harness.system import LocalSystem

KILL, TERMINATE, CRASH = "kill", "terminate", "crash"
PROCESS_FAULTS = (KILL,)
# One round of the bag: kills twice as often as each database fault.
DATABASE_FAULTS_BAG = (KILL, KILL, TERMINATE, CRASH)
JITTER = (0.5, 1.5)  # each pause is fault_every_s times a factor drawn from this range
TERMINATED_DATABASES = ("accounts_service", "transactions_service")
CONNECT_TIMEOUT_S = 10
RESTART_ATTEMPTS = 3
# A restarted process must answer /health/ping within this; a loaded machine needs far more than an idle one.
READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class NemesisPlan:
    targets: tuple[str, ...]  # the process instances it may kill
    fault_every_s: float
    down_for_s: float
    database_faults: bool


async def run_nemesis(
    system: LocalSystem,
    plan: NemesisPlan,
    starts_at: float,
    until: float,
    randomness: random.Random,
    faults: list[str],
    progress: Callable | None = None,
) -> list[str]:
    """Inject faults from starts_at until `until` (time.monotonic()), a line per fault appended to `faults`;
    once every killed process is back, the restarts that failed (the checker starts those itself)."""
    nemesis = _Nemesis(system, plan, randomness)
    try:
        return await _inject_until(nemesis, plan, starts_at, until, randomness, faults, progress)
    finally:  # even when failing: every restart finishes first, so the checker's stop_all sees each process
        await asyncio.gather(*nemesis.restarts.values(), return_exceptions=True)


async def _inject_until(
    nemesis: _Nemesis,
    plan: NemesisPlan,
    starts_at: float,
    until: float,
    randomness: random.Random,
    faults: list[str],
    progress: Callable | None,
) -> list[str]:
    await asyncio.sleep(max(0.0, starts_at - time.monotonic()))
    bag: list[str] = []
    while True:
        pause = plan.fault_every_s * randomness.uniform(*JITTER)
        if time.monotonic() + pause >= until:
            await asyncio.sleep(max(0.0, until - time.monotonic()))
            return await nemesis.restarts_finished()
        await asyncio.sleep(pause)
        if not bag:
            bag = list(DATABASE_FAULTS_BAG if plan.database_faults else PROCESS_FAULTS)
            randomness.shuffle(bag)
        at_s = time.monotonic() - starts_at
        faults.append(f"{await nemesis.inject(bag.pop())} at +{at_s:.1f}s")
        if progress:
            progress()


@dataclass
class _Nemesis:
    system: LocalSystem
    plan: NemesisPlan
    randomness: random.Random
    # A killed process comes back on its own clock, so the next fault need not wait for its restart.
    restarts: dict[str, asyncio.Task] = field(default_factory=dict)

    async def inject(self, kind: str) -> str:
        return await {KILL: self.kill, TERMINATE: self.terminate, CRASH: self.crash}[kind]()

    async def kill(self) -> str:
        running = self._running()
        if not running:  # every process is down: this kill waits for one to be back
            await asyncio.wait(
                [task for task in self.restarts.values() if not task.done()], return_when=asyncio.FIRST_COMPLETED
            )
            running = self._running()
        target = self.randomness.choice(running)
        await asyncio.to_thread(self.system.kill, target, signal.SIGKILL)
        self.restarts[target] = asyncio.create_task(self._restart_later(target))
        return f"{KILL} {target}"

    def _running(self) -> list[str]:
        return [target for target in self.plan.targets if target not in self.restarts or self.restarts[target].done()]

    async def _restart_later(self, target: str) -> str | None:
        await asyncio.sleep(self.plan.down_for_s)
        for _attempt in range(RESTART_ATTEMPTS):
            try:
                await asyncio.to_thread(self.system.start, target, wait=False)
                await asyncio.to_thread(self.system.wait_ready, target, READY_TIMEOUT_S)
                return None
            except RuntimeError as error:  # it exited while starting, or never answered: start it afresh
                problem = str(error).splitlines()[0]
                await asyncio.to_thread(self.system.kill, target, signal.SIGKILL)
        return f"restart of {target} failed {RESTART_ATTEMPTS} times: {problem}"

    async def restarts_finished(self) -> list[str]:
        problems = await asyncio.gather(*self.restarts.values())
        return [problem for problem in problems if problem]

    async def terminate(self) -> str:
        service = self.randomness.choice(TERMINATED_DATABASES)
        database = self.system.database_name(service)
        connection = await asyncpg.connect(self.system.postgres.url("postgres"), timeout=CONNECT_TIMEOUT_S)
        try:
            killed = await connection.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        finally:
            await connection.close()
        return f"{TERMINATE} {killed} connections of {database}"

    async def crash(self) -> str:
        started = time.monotonic()
        await asyncio.to_thread(self.system.postgres.stop, "immediate")
        await asyncio.sleep(self.plan.down_for_s)
        await asyncio.to_thread(self.system.postgres.start)
        return f"{CRASH} PostgreSQL (down {time.monotonic() - started:.1f}s)"
