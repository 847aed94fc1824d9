"""The three services as real processes over HTTP, on free ports, against the suite's PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import pytest_asyncio

from harness.local_postgres import LocalPostgres, free_port
from harness.system import SERVICES, LocalSystem
from shared import jsonio
from shared.demo_ids import ALICE, ALICE_MAIN, BOB, BOB_MAIN  # noqa: F401  (re-exported to the e2e tests)
from tests.conftest import TEST_COORDINATOR_SECRET, TEST_JWT_SECRET, TEST_SERVICE_SECRET, token

# Lines reach the log files from each service's writer thread (shared/log.py), a tick after they are logged.
LOG_WRITTEN_WITHIN_S = 2.0


async def until_logged(written: Callable[[], bool]) -> bool:
    """Whether `written()` (a look at the log files) holds within LOG_WRITTEN_WITHIN_S."""
    deadline = time.monotonic() + LOG_WRITTEN_WITHIN_S
    while not written():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def start_system(postgres: LocalPostgres, log_dir: Path, extra_env: dict[str, str] | None = None) -> LocalSystem:
    system = LocalSystem(
        postgres,
        {spec.name: free_port() for spec in SERVICES},
        log_dir=log_dir,
        jwt_secret=TEST_JWT_SECRET,
        database_prefix=f"e2e{uuid.uuid4().hex[:8]}_",
        coordinator_token_secret=TEST_COORDINATOR_SECRET,
        service_token_secret=TEST_SERVICE_SECRET,
        extra_env=extra_env or {},
    )
    try:
        system.prepare(seed=True)
        system.start_all()
    except BaseException:
        system.stop_all()
        raise
    return system


@pytest.fixture(scope="session")
def system(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    running = start_system(postgres, tmp_path_factory.mktemp("e2e-logs"))
    try:
        yield running
    finally:
        running.stop_all()


@dataclass
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def error_code(self) -> str | None:
        return (self.body.get("error") or {}).get("code")


class Api:
    """A thin HTTP client for tests: exact Decimal JSON both ways."""

    def __init__(self, session: aiohttp.ClientSession, system: LocalSystem) -> None:
        self.session = session
        self.system = system

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        body: Any = None,
        *,
        auth: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        all_headers = dict(headers or {})
        if auth:
            all_headers["Authorization"] = f"Bearer {auth}"
        data = raw if raw is not None else (jsonio.dumps(body) if body is not None else None)
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method, self.system.url(service) + path, data=data, headers=all_headers
        ) as response:
            text = await response.text()
            return Answer(response.status, jsonio.loads(text) if text else {})

    async def login(self, username: str, password: str) -> str:
        answer = await self.call(
            "POST", "customer_service", "/auth/login", {"username": username, "password": password}
        )
        assert answer.status == 200, answer.body
        return answer.data["token"]

    async def balance(self, account_id: uuid.UUID) -> Decimal:
        answer = await self.call("GET", "accounts_service", f"/accounts/{account_id}", auth=token("admin"))
        assert answer.status == 200, answer.body
        return answer.data["balance"]

    async def transfer(
        self, source: uuid.UUID, destination: uuid.UUID, amount: Any, *, auth: str | None = None, key: str | None = None
    ) -> Answer:
        return await self.call(
            "POST",
            "transactions_service",
            "/transfers",
            {"source_account_id": str(source), "destination_account_id": str(destination), "amount": amount},
            auth=auth or token("teller"),
            headers={"Idempotency-Key": key} if key else None,
        )

    async def open_account(self, customer_id: uuid.UUID, balance: Decimal) -> uuid.UUID:
        answer = await self.call(
            "POST",
            "accounts_service",
            "/accounts",
            {"customer_id": str(customer_id), "initial_balance": balance},
            auth=token("teller"),
        )
        assert answer.status == 201, answer.body
        return uuid.UUID(answer.data["account_id"])


@pytest_asyncio.fixture(loop_scope="session")
async def api(system: LocalSystem) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield Api(session, system)


async def fetch(system: LocalSystem, service: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Read a service's database directly: the tests check invariants the way an auditor would."""
    connection = await asyncpg.connect(system.database_url(service))
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()
