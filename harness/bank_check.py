"""The bank checker: it starts, crashes and restarts its own services and database under a Jepsen-style workload.

Many concurrent clients move money between a fixed set of accounts and read balances, first for a
short fault-free phase (the system's own rate without faults), then for a bounded time while a nemesis
(harness/check_nemesis.py) kills service processes, kills database connections and crashes PostgreSQL.
With replicas, two coordinators and two participants share their databases and the clients spread over
them. Then everything is brought back up, the checker waits until nothing is locked or unfinished, and
audits the databases against PROTOCOL.md's invariants, and every answer against the coordinator log:
an answer that said anything but "committed" for a transfer the log says committed is answered wrong.
The checker starts its own system (its own PostgreSQL cluster and service processes on free ports),
because it must own the processes it kills; it reads the databases directly, on purpose.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg

from harness.check_clients import FAULT_FREE, FAULTS, Attempt, Client, Schedule, Targets, Workload, run_client
from harness.check_nemesis import READY_TIMEOUT_S, NemesisPlan, run_nemesis
from harness.invariants import InvariantReport, check_invariants
from harness.local_postgres import LocalPostgres, free_port
from harness.system import SERVICE_BY_NAME, LocalSystem
from shared import jsonio
from shared.demo_ids import ALICE

DEMO_CUSTOMER = ALICE
OPENING_BALANCE = Decimal("1000")
QUIESCE_TIMEOUT_S = 60.0
QUIESCE_POLL_S = 0.2
CLIENT_TIMEOUT_S = 10.0
REPLICAS_MAX = 3
PROXY_START_TIMEOUT_S = 10.0
COORDINATOR, PARTICIPANT = "transactions_service", "accounts_service"
# The one answer that says nothing about the outcome on purpose (PROTOCOL.md step 5): never "answered wrong".
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
ANSWERED_WRONG_SHOWN = 20
UNHANDLED_ERRORS_SHOWN = 5
UNHANDLED_ERROR_LINE_MAX = 500
# Short protocol deadlines so recovery after each fault is quick; every one is a named service setting.
CHECK_SERVICE_ENV = {
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
_LOGGED_BY_KEY = "SELECT idempotency_key, status FROM transactions WHERE idempotency_key = ANY($1::text[])"


@dataclass(frozen=True)
class CheckOptions:
    seconds: float = 60.0  # the phase with faults
    fault_free_s: float = 0.0  # the phase before it, without faults
    clients: int = 8
    accounts: int = 10
    fault_every_s: float = 3.0
    down_for_s: float = 1.0
    replicas: int = 1  # of the coordinator and of the participant, on their shared databases
    database_faults: bool = False
    seed: int | None = None
    commands: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert 1 <= self.replicas <= REPLICAS_MAX, "one to three replicas"
        assert self.seconds > 0 and self.fault_free_s >= 0, "phases have a length"


@dataclass
class CheckReport:
    workload: Workload = field(default_factory=Workload)
    faults: list[str] = field(default_factory=list)
    phase_s: dict[str, float] = field(default_factory=dict)
    committed_logged: Counter = field(default_factory=Counter)  # phase -> transfers the log says committed
    answered_wrong: list[str] = field(default_factory=list)
    restarts_failed: list[str] = field(default_factory=list)
    unhandled_errors: list[str] = field(default_factory=list)  # the services' logged 500s, so a report says why
    quiesce_s: float | None = None
    invariants: InvariantReport | None = None

    @property
    def violations(self) -> list[str]:
        return self.workload.read_violations + (self.invariants.violations if self.invariants else ["no final audit"])

    @property
    def outcomes(self) -> Counter:
        return Counter(attempt.told for attempt in self.workload.attempts)

    def committed_per_s(self, phase: str) -> Decimal | None:
        seconds = self.phase_s.get(phase, 0)
        return Decimal(f"{self.committed_logged[phase] / seconds:.1f}") if seconds else None

    def as_dict(self) -> dict:
        outcomes, attempts = self.outcomes, self.workload.attempts
        statuses = Counter(attempt.status for attempt in attempts if attempt.status)
        server_errors = sum(count for status, count in statuses.items() if status >= 500)
        return {
            "transfers_attempted": sum(outcomes.values()),
            "committed": outcomes["committed"],
            "aborted": outcomes["aborted"],
            "indeterminate": outcomes["indeterminate"],
            "unavailable": outcomes["unavailable"],
            "answers_500": statuses[500],
            "answers_503": statuses[503],
            "answers_5xx_other": server_errors - statuses[500] - statuses[503],
            "unhandled_errors_logged": len(self.unhandled_errors),
            "unhandled_errors_examples": self.unhandled_errors[:UNHANDLED_ERRORS_SHOWN],
            "answered_outcome_unknown": sum(attempt.code == OUTCOME_UNKNOWN for attempt in attempts),
            "answered_wrong": len(self.answered_wrong),
            "answered_wrong_examples": self.answered_wrong[:ANSWERED_WRONG_SHOWN],
            "committed_per_s_fault_free": self.committed_per_s(FAULT_FREE),
            "committed_per_s_during_faults": self.committed_per_s(FAULTS),
            "faults_injected": len(self.faults),
            "faults_by_kind": dict(Counter(fault.split()[0] for fault in self.faults)),
            "faults": self.faults,
            "restarts_failed": self.restarts_failed,
            "reads_checked": self.workload.reads_checked,
            "violations": self.violations,
            "locks_left": self.invariants.locked_accounts if self.invariants else None,
            "unfinished_left": self.invariants.unfinished_transfers if self.invariants else None,
            "time_to_quiesce_s": None if self.quiesce_s is None else Decimal(f"{self.quiesce_s:.2f}"),
        }


def instance_names(service: str, replicas: int) -> tuple[str, ...]:
    return (service, *(f"{service}@{index}" for index in range(2, replicas + 1)))


@dataclass(frozen=True)
class Topology:
    """The processes a check runs, and the Service (harness/service_proxy.py) in front of each replicated one."""

    system: LocalSystem
    proxy_ports: dict[str, int]  # service -> its Service's port; empty with one replica

    def urls(self, service: str, replicas: int) -> tuple[str, ...]:
        if service in self.proxy_ports:
            return (f"http://127.0.0.1:{self.proxy_ports[service]}",)
        return tuple(self.system.url(name) for name in instance_names(service, replicas))


def _build(folder: Path, options: CheckOptions) -> Topology:
    """With replicas, every caller (the clients and the services themselves) reaches a replicated service
    through its Service, so calls spread over the replicas and avoid a dead one, as in a cluster."""
    # Crashing the server must lose no acknowledged commit, as on a real one: synchronous_commit stays on.
    postgres = LocalPostgres(folder / "pg", free_port(), durable=False, survives_server_crash=True)
    proxy_ports = {service: free_port() for service in (COORDINATOR, PARTICIPANT)} if options.replicas > 1 else {}
    through_proxies = {
        SERVICE_BY_NAME[service].url_variable: f"http://127.0.0.1:{port}" for service, port in proxy_ports.items()
    }
    system = LocalSystem(
        postgres,
        {name: free_port() for name in ("customer_service", PARTICIPANT, COORDINATOR)},
        folder / "logs",
        jwt_secret=uuid.uuid4().hex * 2,
        extra_env={**CHECK_SERVICE_ENV, **through_proxies},
        commands=options.commands,
    )
    for service in (COORDINATOR, PARTICIPANT):
        for name in instance_names(service, options.replicas)[1:]:
            system.add_instance(service, name, free_port())
    return Topology(system, proxy_ports)


def _start_proxies(topology: Topology, replicas: int) -> list[subprocess.Popen]:
    proxies = []
    for service, port in topology.proxy_ports.items():
        replica_ports = [topology.system.ports[name] for name in instance_names(service, replicas)]
        proxies.append(
            subprocess.Popen(
                [sys.executable, "-m", "harness.service_proxy", str(port), *map(str, replica_ports)],
                stdin=subprocess.DEVNULL,
            )
        )
    for port in topology.proxy_ports.values():
        _wait_listening(port)
    return proxies


def _wait_listening(port: int) -> None:
    give_up_at = time.monotonic() + PROXY_START_TIMEOUT_S
    while time.monotonic() < give_up_at:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(QUIESCE_POLL_S)
    raise RuntimeError(f"the service proxy on {port} did not start")


def _stop_proxies(proxies: list[subprocess.Popen]) -> None:
    for proxy in proxies:
        proxy.terminate()
        proxy.wait(timeout=PROXY_START_TIMEOUT_S)


async def run_check(options: CheckOptions, progress: Callable[[CheckReport], None] | None = None) -> CheckReport:
    """Start a system, run the phases, wait for quiet, audit. Always stops what it started."""
    with tempfile.TemporaryDirectory(prefix="bank-check-") as folder:
        topology = _build(Path(folder), options)
        system, proxies = topology.system, []
        try:
            await asyncio.to_thread(system.postgres.start)
            await asyncio.to_thread(system.prepare)
            proxies = await asyncio.to_thread(_start_proxies, topology, options.replicas)
            await asyncio.to_thread(_start_everything, system)
            report = await _run_against(topology, options, random.Random(options.seed), progress)
        finally:
            await asyncio.to_thread(system.stop_all)
            await asyncio.to_thread(_stop_proxies, proxies)
            await asyncio.to_thread(system.postgres.stop, "immediate")
        report.unhandled_errors = _unhandled_errors(system.log_dir / "error.log")
        return report


def _unhandled_errors(error_log: Path) -> list[str]:
    """Each logged unhandled error (a 500) as its service, request and the last line of its traceback."""
    if not error_log.exists():
        return []
    found = []
    for line in error_log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = jsonio.loads(line)
        except jsonio.JsonInputError:  # a line a killed process left half written, or not ours
            continue
        if isinstance(entry, dict) and entry.get("event") == "unhandled_error":
            found.append(f"{entry.get('service_name')} {entry.get('method')} {entry.get('path')}: {_raised(entry)}")
    return found


def _raised(entry: dict) -> str:
    """The traceback's exception line: the first line after the last frame and its source lines."""
    lines = (entry.get("exception") or "").strip().splitlines()
    frames = [index for index, line in enumerate(lines) if line.startswith("  File ")]
    after = lines[frames[-1] + 1 :] if frames else lines
    raised = next((line for line in after if not line.startswith("    ")), lines[-1] if lines else "")
    return raised.strip()[:UNHANDLED_ERROR_LINE_MAX]


def _start_everything(system: LocalSystem) -> None:
    """Every service and instance that is not running (after the run: whatever a fault left down)."""
    names = [name for name in system.ports if name not in system.processes or system.processes[name].poll() is not None]
    for name in names:
        system.start(name, wait=False)
    for name in names:
        system.wait_ready(name, READY_TIMEOUT_S)


async def _run_against(
    topology: Topology, options: CheckOptions, randomness: random.Random, progress: Callable[[CheckReport], None] | None
) -> CheckReport:
    report, system = CheckReport(), topology.system
    targets = Targets(topology.urls(COORDINATOR, options.replicas), topology.urls(PARTICIPANT, options.replicas))
    plan = NemesisPlan(
        instance_names(COORDINATOR, options.replicas) + instance_names(PARTICIPANT, options.replicas),
        options.fault_every_s,
        options.down_for_s,
        options.database_faults,
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)) as session:
        client = Client(session, system)
        accounts = [await _open_account(client, system.url(PARTICIPANT)) for _ in range(options.accounts)]
        started = time.monotonic()
        schedule = Schedule(
            faults_from=started + options.fault_free_s, until=started + options.fault_free_s + options.seconds
        )
        clients = [
            run_client(client, targets, accounts, schedule, randomness, report.workload, OPENING_BALANCE)
            for _ in range(options.clients)
        ]
        nemesis = run_nemesis(
            system,
            plan,
            schedule.faults_from,
            schedule.until,
            randomness,
            report.faults,
            progress=(lambda: progress(report)) if progress else None,
        )
        report.restarts_failed, _ = await asyncio.gather(nemesis, asyncio.gather(*clients))
    report.phase_s = {FAULT_FREE: options.fault_free_s, FAULTS: options.seconds}
    await asyncio.to_thread(_start_everything, system)
    await _audit(system, accounts, report)
    await _judge_answers(system.database_url(COORDINATOR), report)
    return report


async def _open_account(client: Client, participant_url: str) -> uuid.UUID:
    status, body = await client.call(
        "POST", participant_url, "/accounts", {"customer_id": str(DEMO_CUSTOMER), "initial_balance": OPENING_BALANCE}
    )
    assert status == 201, f"could not open a checker account: {status} {body}"
    return uuid.UUID(body["data"]["account_id"])


def _told(attempts: list[Attempt]) -> dict[uuid.UUID, str]:
    """The outcomes clients were told in so many words: invariant 6 holds the log to them."""
    return {
        attempt.transaction_id: attempt.told
        for attempt in attempts
        if attempt.transaction_id is not None and attempt.told in ("committed", "aborted")
    }


async def _audit(system: LocalSystem, accounts: list[uuid.UUID], report: CheckReport) -> None:
    """Wait until nothing is locked or unfinished (bounded), then check every invariant."""
    started = time.monotonic()
    told = _told(report.workload.attempts)
    arguments = (system.database_url(PARTICIPANT), system.database_url(COORDINATOR), accounts)
    expected_total = OPENING_BALANCE * len(accounts)
    while True:
        audit = await check_invariants(*arguments, expected_total=expected_total, quiesced=False, client_outcomes=told)
        quiet = audit.locked_accounts == 0 and audit.unfinished_transfers == 0
        if quiet or time.monotonic() - started > QUIESCE_TIMEOUT_S:
            break
        await asyncio.sleep(QUIESCE_POLL_S)
    report.quiesce_s = time.monotonic() - started if quiet else None
    report.invariants = await check_invariants(
        *arguments, expected_total=expected_total, quiesced=True, client_outcomes=told
    )


async def _judge_answers(transactions_url: str, report: CheckReport) -> None:
    """Each attempt's transfer, found by its Idempotency-Key in the coordinator log, against its answer."""
    attempts = report.workload.attempts
    connection = await asyncpg.connect(transactions_url)
    try:
        rows = await connection.fetch(_LOGGED_BY_KEY, [attempt.key for attempt in attempts])
    finally:
        await connection.close()
    logged = {row["idempotency_key"]: row["status"] for row in rows}
    for attempt in attempts:
        committed = logged.get(attempt.key) == "committed"
        report.committed_logged[attempt.phase] += committed
        if _answered_wrong(attempt, committed):
            report.answered_wrong.append(
                f"key {attempt.key}: answered {attempt.status} {attempt.code or ''}, "
                f"log says {logged.get(attempt.key, 'no such transfer')}"
            )


def _answered_wrong(attempt: Attempt, committed: bool) -> bool:
    """An answer came and said something else than the log: "committed" for a transfer that did not commit,
    or anything else (an abort, "try again", an error) for one that did. No answer, or "outcome unknown",
    says nothing."""
    if attempt.status is None or attempt.code == OUTCOME_UNKNOWN:
        return False
    return (attempt.status == 200) != committed
