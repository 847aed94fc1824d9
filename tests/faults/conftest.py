"""A system with short protocol timeouts, whose processes the fault tests crash and restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from uuid import UUID

import aiohttp
import pytest
import pytest_asyncio

from harness.invariants import InvariantReport, check_invariants
from harness.local_postgres import LocalPostgres
from harness.system import LocalSystem
from tests.e2e.conftest import Api, start_system

# Short deadlines so a crash resolves in seconds; each one is a named setting of the services.
FAST_RECOVERY_ENV = {
    "PREPARE_TIMEOUT_S": "2",
    "DECISION_TIMEOUT_S": "2",
    "PREPARE_BUSY_WAIT_S": "0.5",
    "PREPARE_DEADLINE_S": "3",
    "COMPLETION_GRACE_S": "1",
    "IN_DOUBT_TIMEOUT_S": "2",
    "RECOVERY_INTERVAL_S": "0.2",
    "RECOVERY_RETRY_FIRST_S": "0.2",
    "RECOVERY_RETRY_MAX_S": "1",
    "HTTP_TIMEOUT_S": "2",
}
# How long after the crashed process is back every invariant must hold.
RECOVERY_BOUND_S = 10.0
CRASH_WAIT_S = 15.0


@pytest.fixture(scope="module")
def fault_system(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    running = start_system(postgres, tmp_path_factory.mktemp("fault-logs"), extra_env=FAST_RECOVERY_ENV)
    try:
        yield running
    finally:
        running.stop_all()


@pytest_asyncio.fixture(loop_scope="session")
async def fault_api(fault_system: LocalSystem) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield Api(session, fault_system)


async def restart(system: LocalSystem, service: str, overrides: dict[str, str] | None = None) -> None:
    """Stop the service (SIGKILL if it is still up) and start it again with these overrides."""
    await asyncio.to_thread(system.kill, service)
    await asyncio.to_thread(system.start, service, overrides)


async def wait_for_exit(system: LocalSystem, service: str) -> int:
    process = system.processes[service]
    return await asyncio.to_thread(process.wait, CRASH_WAIT_S)


async def settled_report(
    system: LocalSystem, accounts: list[UUID], expected_total: Decimal, client_outcomes: dict[UUID, str] | None = None
) -> tuple[InvariantReport, float]:
    """Poll the invariants until all six hold or RECOVERY_BOUND_S passes; the last report and the time taken."""
    started = time.monotonic()
    while True:
        report = await check_invariants(
            system.database_url("accounts_service"),
            system.database_url("transactions_service"),
            accounts,
            expected_total=expected_total,
            client_outcomes=client_outcomes,
        )
        elapsed = time.monotonic() - started
        if report.ok or elapsed > RECOVERY_BOUND_S:
            return report, elapsed
        await asyncio.sleep(0.2)
