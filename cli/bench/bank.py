"""The bench's own bank, opened over HTTP like a teller would: its customers, their accounts, their tokens.

Each customer's token is minted locally from JWT_SECRET (as `banking-cli tokens` mints the demo ones),
so the measured path holds what a customer's transfer costs (the ownership check included) and no
login: logging in is a separate, deliberately slow operation (password hashing).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from cli.bench.workloads import Workload
from shared import jsonio
from shared.auth import issue_token
from shared.settings import DEFAULT_SERVICE_POOL_SIZE

# Requests the bench's setup keeps in flight: fewer than a service's database pool holds. Beyond the pool,
# SQLAlchemy opens overflow connections and closes each one as it is returned, so every few requests
# would start a PostgreSQL backend: at 32, opening 3,000 accounts started about 400 of them and took 30%
# longer than at 16, which started none.
SETUP_CONCURRENCY = 16
assert SETUP_CONCURRENCY < DEFAULT_SERVICE_POOL_SIZE, "the setup stays within the services' pools"
# Long enough for any bench run and its audit; the services accept a token until it expires.
BENCH_TOKEN_TTL_S = 24 * 3600
CALLERS = ("customer", "teller")


@dataclass
class BenchBank:
    """The workload's accounts by index, and the Authorization header each transfer from one is sent with."""

    account_ids: list[str] = field(default_factory=list)
    customer_ids: list[str] = field(default_factory=list)
    transfer_headers: list[dict[str, str]] = field(default_factory=list)  # by account index


class BankOpener:
    """Opens a BenchBank through the customer and accounts services with a teller token."""

    def __init__(self, session: aiohttp.ClientSession, urls: dict[str, str], jwt_secret: str) -> None:
        self.session = session
        self.urls = urls
        self.jwt_secret = jwt_secret
        # An admin: the bench opens accounts above a teller's opening-deposit cap.
        self.teller_headers = _headers(issue_token(jwt_secret, role="admin", ttl_s=BENCH_TOKEN_TTL_S)[0])
        self.run_tag = uuid.uuid4().hex[:12]  # keeps each run's customer emails unique

    async def call(
        self, method: str, service: str, path: str, body: dict | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict]:
        async with self.session.request(
            method,
            self.urls[service] + path,
            headers=headers or self.teller_headers,
            data=jsonio.dumps(body) if body is not None else None,
        ) as response:
            return response.status, jsonio.loads(await response.read() or b"{}")

    async def open(self, workload: Workload, caller: str) -> BenchBank:
        assert caller in CALLERS, f"unknown caller {caller}"
        bank = BenchBank()
        bank.customer_ids = await bounded(self._create_customer, workload.customers)
        bank.account_ids = await bounded(
            lambda index: self._open_account(bank.customer_ids[workload.owner_of(index)], workload), workload.accounts
        )
        if caller == "teller":
            bank.transfer_headers = [self.teller_headers] * workload.accounts
        else:
            tokens = [_headers(self._customer_token(customer_id)) for customer_id in bank.customer_ids]
            bank.transfer_headers = [tokens[workload.owner_of(index)] for index in range(workload.accounts)]
        return bank

    async def _create_customer(self, index: int) -> str:
        status, body = await self.call(
            "POST",
            "customers",
            "/customers",
            {
                "name": f"Bench Customer {index}",
                "address": f"{index} Benchmark Street",
                "contact_info": {"email": f"bench-{self.run_tag}-{index}@bench.example"},
            },
        )
        if status != 201:
            raise RuntimeError(f"could not create a bench customer: {status} {body}")
        return body["data"]["customer_id"]

    async def _open_account(self, customer_id: str, workload: Workload) -> str:
        status, body = await self.call(
            "POST", "accounts", "/accounts", {"customer_id": customer_id, "initial_balance": workload.opening_balance}
        )
        if status != 201:
            raise RuntimeError(f"could not open a bench account: {status} {body}")
        return body["data"]["account_id"]

    def _customer_token(self, customer_id: str) -> str:
        return issue_token(
            self.jwt_secret, role="customer", customer_id=uuid.UUID(customer_id), ttl_s=BENCH_TOKEN_TTL_S
        )[0]


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


async def bounded(work: Callable[[int], Awaitable], count: int) -> list:
    """work(0..count-1), at most SETUP_CONCURRENCY at a time, results in index order."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(index: int):
        async with gate:
            return await work(index)

    return list(await asyncio.gather(*(one(index) for index in range(count))))
