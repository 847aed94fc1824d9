"""The bank checker: it starts, SIGKILLs and restarts its own services under a Jepsen-style workload, then audits.

Many concurrent clients move money between a fixed set of accounts and read balances for a bounded
time, while a nemesis SIGKILLs and restarts service processes at random. Then everything is brought
back up, the checker waits until nothing is locked or unfinished, and audits the databases against
PROTOCOL.md's invariants. The checker starts its own system (its own PostgreSQL cluster and service
processes on free ports), because it must own the processes it kills.
"""
from __future__ import annotations

import asyncio
import random
import signal
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import aiohttp

from harness.invariants import InvariantReport, check_invariants
from harness.local_postgres import LocalPostgres, free_port
from harness.system import SERVICES, LocalSystem
from shared import jsonio
from shared.auth import issue_token
from shared.demo_ids import ALICE

DEMO_CUSTOMER = ALICE
OPENING_BALANCE = Decimal("1000")
QUIESCE_TIMEOUT_S = 60.0
CLIENT_TIMEOUT_S = 10.0
NEMESIS_TARGETS = ("accounts_service", "transactions_service")
# Short protocol deadlines so recovery after each kill is quick; every one is a named service setting.
CHECK_SERVICE_ENV = {
    "PREPARE_TIMEOUT_S": "2", "DECISION_TIMEOUT_S": "2", "PREPARE_BUSY_WAIT_S": "0.5",
    "PREPARE_DEADLINE_S": "3", "COMPLETION_GRACE_S": "1", "IN_DOUBT_TIMEOUT_S": "2",
    "RECOVERY_INTERVAL_S": "0.2", "RECOVERY_RETRY_FIRST_S": "0.2", "RECOVERY_RETRY_MAX_S": "1",
    "HTTP_TIMEOUT_S": "2",
}


@dataclass(frozen=True)
class CheckOptions:
    seconds: float = 60.0
    clients: int = 8
    accounts: int = 10
    kill_every_s: float = 3.0
    down_for_s: float = 1.0
    seed: int | None = None
    commands: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class CheckReport:
    outcomes: Counter = field(default_factory=Counter)
    faults: list[str] = field(default_factory=list)
    reads_checked: int = 0
    read_violations: list[str] = field(default_factory=list)
    quiesce_s: float | None = None
    invariants: InvariantReport | None = None

    @property
    def violations(self) -> list[str]:
        return self.read_violations + (self.invariants.violations if self.invariants else ["no final audit"])

    def as_dict(self) -> dict:
        return {"transfers_attempted": sum(self.outcomes.values()), "committed": self.outcomes["committed"],
                "aborted": self.outcomes["aborted"], "indeterminate": self.outcomes["indeterminate"],
                "unavailable": self.outcomes["unavailable"],
                "faults_injected": len(self.faults), "faults": self.faults, "reads_checked": self.reads_checked,
                "violations": self.violations,
                "locks_left": self.invariants.locked_accounts if self.invariants else None,
                "unfinished_left": self.invariants.unfinished_transfers if self.invariants else None,
                "time_to_quiesce_s": None if self.quiesce_s is None else Decimal(f"{self.quiesce_s:.2f}")}


class _Client:
    def __init__(self, session: aiohttp.ClientSession, system: LocalSystem) -> None:
        self.session = session
        self.system = system
        self.headers = {"Authorization": "Bearer " + issue_token(system.jwt_secret, role="teller", ttl_s=3600)[0],
                        "Content-Type": "application/json"}

    async def call(self, method: str, service: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        async with self.session.request(method, self.system.url(service) + path, headers=self.headers,
                                        data=jsonio.dumps(body) if body is not None else None) as response:
            text = await response.text()
            return response.status, jsonio.loads(text) if text else {}


async def run_check(options: CheckOptions, progress=None) -> CheckReport:
    """Start a system, run the workload and the nemesis, wait for quiet, audit. Always stops what it started."""
    randomness = random.Random(options.seed)
    with tempfile.TemporaryDirectory(prefix="bank-check-") as folder:
        postgres = LocalPostgres(Path(folder) / "pg", free_port(), durable=False)
        system = LocalSystem(postgres, {spec.name: free_port() for spec in SERVICES}, Path(folder) / "logs",
                             jwt_secret=uuid.uuid4().hex * 2, extra_env=CHECK_SERVICE_ENV,
                             commands=options.commands)
        try:
            await asyncio.to_thread(postgres.start)
            await asyncio.to_thread(system.prepare)
            await asyncio.to_thread(system.start_all)
            return await _run_against(system, options, randomness, progress)
        finally:
            await asyncio.to_thread(system.stop_all)
            await asyncio.to_thread(postgres.stop, "immediate")


async def _run_against(system: LocalSystem, options: CheckOptions, randomness: random.Random, progress) -> CheckReport:
    report = CheckReport()
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = _Client(session, system)
        accounts = [await _open_account(client) for _ in range(options.accounts)]
        told: dict[uuid.UUID, str] = {}
        deadline = time.monotonic() + options.seconds
        workers = [_worker(client, accounts, deadline, randomness, report, told) for _ in range(options.clients)]
        await asyncio.gather(_nemesis(system, options, deadline, randomness, report, progress), *workers)
    for spec in SERVICES:
        if system.processes[spec.name].poll() is not None:
            await asyncio.to_thread(system.start, spec.name)
    await _audit(system, accounts, told, report)
    return report


async def _open_account(client: _Client) -> uuid.UUID:
    status, body = await client.call("POST", "accounts_service", "/accounts",
                                     {"customer_id": str(DEMO_CUSTOMER), "initial_balance": OPENING_BALANCE})
    assert status == 201, f"could not open a checker account: {status} {body}"
    return uuid.UUID(body["data"]["account_id"])


async def _worker(client: _Client, accounts: list[uuid.UUID], deadline: float, randomness: random.Random,
                  report: CheckReport, told: dict[uuid.UUID, str]) -> None:
    while time.monotonic() < deadline:
        if randomness.random() < 0.3:
            await _read(client, randomness.choice(accounts), report)
            continue
        source, destination = randomness.sample(accounts, 2)
        # Mostly affordable amounts, some that must fail for insufficient funds.
        amount = Decimal(randomness.randint(1, 40000)) / 100 if randomness.random() < 0.9 else OPENING_BALANCE * 5
        outcome, transaction_id = await _transfer(client, source, destination, amount)
        report.outcomes[outcome] += 1
        if transaction_id is not None and outcome != "indeterminate":
            told[transaction_id] = outcome
        if outcome in ("indeterminate", "unavailable"):
            await asyncio.sleep(0.1)  # the service is down: do not spin


async def _transfer(client: _Client, source: uuid.UUID, destination: uuid.UUID, amount: Decimal
                    ) -> tuple[str, uuid.UUID | None]:
    try:
        status, body = await client.call("POST", "transactions_service", "/transfers", {
            "source_account_id": str(source), "destination_account_id": str(destination), "amount": amount})
    except aiohttp.ClientConnectorError:
        return "unavailable", None  # never reached the coordinator: certainly not executed
    except (aiohttp.ClientError, TimeoutError, jsonio.JsonInputError):
        return "indeterminate", None
    if status == 200:
        return "committed", uuid.UUID(body["data"]["transaction_id"])
    details = (body.get("error") or {}).get("details") or {}
    if status == 409 and details.get("status") == "aborted":
        return "aborted", uuid.UUID(details["transaction_id"])
    return "indeterminate", None


async def _read(client: _Client, account_id: uuid.UUID, report: CheckReport) -> None:
    try:
        status, body = await client.call("GET", "accounts_service", f"/accounts/{account_id}")
    except (aiohttp.ClientError, TimeoutError, jsonio.JsonInputError):
        await asyncio.sleep(0.05)
        return
    if status != 200:
        return
    report.reads_checked += 1
    balance, pending = body["data"]["balance"], body["data"]["pending_change"] or Decimal(0)
    if balance < 0 or balance + pending < 0:
        report.read_violations.append(f"2: read account {account_id} balance {balance} pending {pending}")


async def _nemesis(system: LocalSystem, options: CheckOptions, deadline: float, randomness: random.Random,
                   report: CheckReport, progress) -> None:
    """SIGKILL a random service every kill_every_s (jittered), bring it back after down_for_s."""
    while True:
        pause = options.kill_every_s * randomness.uniform(0.5, 1.5)
        if time.monotonic() + pause >= deadline:
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            return
        await asyncio.sleep(pause)
        target = randomness.choice(NEMESIS_TARGETS)
        await asyncio.to_thread(system.kill, target, signal.SIGKILL)
        report.faults.append(f"SIGKILL {target} at +{options.seconds - (deadline - time.monotonic()):.1f}s")
        if progress:
            progress(report)
        await asyncio.sleep(options.down_for_s)
        await asyncio.to_thread(system.start, target)


async def _audit(system: LocalSystem, accounts: list[uuid.UUID], told: dict[uuid.UUID, str],
                 report: CheckReport) -> None:
    """Wait until nothing is locked or unfinished (bounded), then check every invariant."""
    started = time.monotonic()
    expected_total = OPENING_BALANCE * len(accounts)
    while True:
        audit = await check_invariants(system.database_url("accounts_service"),
                                       system.database_url("transactions_service"), accounts,
                                       expected_total=expected_total, quiesced=False, client_outcomes=told)
        quiet = audit.locked_accounts == 0 and audit.unfinished_transfers == 0
        if quiet or time.monotonic() - started > QUIESCE_TIMEOUT_S:
            break
        await asyncio.sleep(0.2)
    report.quiesce_s = time.monotonic() - started if quiet else None
    report.invariants = await check_invariants(system.database_url("accounts_service"),
                                               system.database_url("transactions_service"), accounts,
                                               expected_total=expected_total, quiesced=True, client_outcomes=told)
