"""The bank checker's clients: transfers and reads over HTTP, spread over every replica, each answer recorded.

Every transfer attempt carries its own client-chosen Idempotency-Key, so that after the run the audit
finds the transfer the coordinator logged for it (if any) and compares it with what the client was told.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import aiohttp

from harness.system import LocalSystem
from shared import jsonio
from shared.auth import issue_token

READ_SHARE = 0.3  # of the operations a client runs, this many are balance reads
UNAFFORDABLE_SHARE = 0.1  # of the transfers, this many ask more than any account holds
AMOUNT_CENTS_MAX = 40000  # an affordable transfer moves 0.01 to 400.00
UNAFFORDABLE_FACTOR = 5  # times the opening balance
BACKOFF_S = 0.1  # after an answer that the service is down: do not spin
TOKEN_TTL_S = 24 * 3600
FAULT_FREE, FAULTS = "fault_free", "faults"


@dataclass(frozen=True)
class Attempt:
    """One transfer attempt as the client saw it."""

    key: str  # its Idempotency-Key
    phase: str  # FAULT_FREE or FAULTS: when it was sent
    told: str  # committed | aborted | unavailable (never reached) | indeterminate
    status: int | None  # the HTTP status, None when no answer came
    code: str | None  # the error code of a failed answer
    transaction_id: uuid.UUID | None


@dataclass
class Workload:
    """What the clients saw, filled in as they run."""

    attempts: list[Attempt] = field(default_factory=list)
    reads_checked: int = 0
    read_violations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Schedule:
    faults_from: float  # time.monotonic() when the fault-free phase ends
    until: float  # time.monotonic() when the clients stop

    def phase(self) -> str:
        return FAULT_FREE if time.monotonic() < self.faults_from else FAULTS


class Client:
    def __init__(self, session: aiohttp.ClientSession, system: LocalSystem) -> None:
        self.session = session
        self.system = system
        self.token = "Bearer " + issue_token(system.jwt_secret, role="teller", ttl_s=TOKEN_TTL_S)[0]

    async def call(
        self, method: str, base_url: str, path: str, body: dict | None = None, key: str | None = None
    ) -> tuple[int, dict]:
        headers = {"Authorization": self.token, "Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        async with self.session.request(
            method, base_url + path, headers=headers, data=jsonio.dumps(body) if body is not None else None
        ) as response:
            text = await response.text()
            return response.status, jsonio.loads(text) if text else {}


@dataclass(frozen=True)
class Targets:
    """Where clients send transfers and reads: one URL per replica, or the one Service in front of them."""

    coordinator_urls: tuple[str, ...]
    participant_urls: tuple[str, ...]


async def run_client(
    client: Client,
    targets: Targets,
    accounts: list[uuid.UUID],
    schedule: Schedule,
    randomness: random.Random,
    workload: Workload,
    opening: Decimal,
) -> None:
    while time.monotonic() < schedule.until:
        if randomness.random() < READ_SHARE:
            await _read(client, randomness.choice(targets.participant_urls), randomness.choice(accounts), workload)
            continue
        source, destination = randomness.sample(accounts, 2)
        affordable = randomness.random() >= UNAFFORDABLE_SHARE
        amount = Decimal(randomness.randint(1, AMOUNT_CENTS_MAX)) / 100 if affordable else opening * UNAFFORDABLE_FACTOR
        attempt = await _transfer(
            client, randomness.choice(targets.coordinator_urls), schedule.phase(), source, destination, amount
        )
        workload.attempts.append(attempt)
        if attempt.told in ("indeterminate", "unavailable"):
            await asyncio.sleep(BACKOFF_S)


async def _transfer(
    client: Client, coordinator: str, phase: str, source: uuid.UUID, destination: uuid.UUID, amount: Decimal
) -> Attempt:
    key = str(uuid.uuid4())
    body = {"source_account_id": str(source), "destination_account_id": str(destination), "amount": amount}
    try:
        status, answer = await client.call("POST", coordinator, "/transfers", body, key=key)
    except aiohttp.ClientConnectorError:
        return Attempt(key, phase, "unavailable", None, None, None)  # never reached: certainly not executed
    except (aiohttp.ClientError, TimeoutError, jsonio.JsonInputError):
        return Attempt(key, phase, "indeterminate", None, None, None)
    if status == 200:
        return Attempt(key, phase, "committed", status, None, uuid.UUID(answer["data"]["transaction_id"]))
    error = answer.get("error") or {}
    details = found if isinstance(found := error.get("details"), dict) else {}
    if status == 409 and details.get("status") == "aborted":
        return Attempt(key, phase, "aborted", status, error.get("code"), uuid.UUID(details["transaction_id"]))
    return Attempt(key, phase, "indeterminate", status, error.get("code"), None)


async def _read(client: Client, participant: str, account_id: uuid.UUID, workload: Workload) -> None:
    try:
        status, body = await client.call("GET", participant, f"/accounts/{account_id}")
    except (aiohttp.ClientError, TimeoutError, jsonio.JsonInputError):
        await asyncio.sleep(BACKOFF_S)
        return
    if status != 200:
        return
    workload.reads_checked += 1
    balance, pending = body["data"]["balance"], body["data"]["pending_change"] or Decimal(0)
    if balance < 0 or balance + pending < 0:
        workload.read_violations.append(f"2: read account {account_id} balance {balance} pending {pending}")
