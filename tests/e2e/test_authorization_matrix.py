"""The authorization matrix: every route of every service x every kind of caller, with the exact status,
and a refused write changes nothing. The routes come from the apps' own routers, so a new route without a
row here fails `test_every_route_has_a_row`."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from accounts_service.app import create_app as create_accounts_app
from accounts_service.settings import Settings as AccountsSettings
from customer_service.app import create_app as create_customer_app
from customer_service.settings import Settings as CustomerSettings
from harness.system import LocalSystem
from shared.auth import SERVICE_NAMES, TokenKeys, issue_token
from shared.demo_ids import CAROL  # owns none of Alice's or Bob's accounts
from tests.conftest import (
    TEST_COORDINATOR_SECRET,
    TEST_JWT_SECRET,
    TEST_KEYS,
    TEST_TOKEN_KEYS,
    coordinator_token,
    token,
)
from tests.e2e.conftest import ALICE, ALICE_MAIN, BOB_MAIN, Api, fetch
from transactions_service.app import create_app as create_transactions_app
from transactions_service.settings import Settings as TransactionsSettings

ALICE_EMAIL_QUERY = "email=alice@example.com"
UNROUTED_PREFIXES = ("/health", "/ready", "/metrics", "/openapi", "/docs")
SERVICE_BY_APP_NAME = {
    "customer-service": "customer_service",
    "accounts-service": "accounts_service",
    "transactions-service": "transactions_service",
}
UNAUTHENTICATED = ("none", "bad_signature", "expired", "alg_none", "service_other_audience")
PRINCIPALS = (
    *UNAUTHENTICATED[:4],
    "owner",
    "other_customer",
    "teller",
    "admin",
    "service",
    "service_other_audience",
    "coordinator",
)
# Only transactions_service (signs) and accounts_service (verifies) hold the coordinator key.
COORDINATOR_KEY_HOLDERS = ("accounts_service", "transactions_service")


def router_routes() -> set[tuple[str, str, str]]:
    """(service, method, path template) of every route the apps serve, minus health, metrics and docs."""
    url = "postgresql+asyncpg://unused@127.0.0.1:1/unused"
    apps = [
        create_customer_app(CustomerSettings(database_url=url, **TEST_KEYS)),
        create_accounts_app(AccountsSettings(database_url=url, demo_endpoints=True, **TEST_KEYS)),
        create_transactions_app(TransactionsSettings(database_url=url, **TEST_KEYS)),
    ]
    routes = set()
    for app, service in zip(apps, ("customer_service", "accounts_service", "transactions_service"), strict=True):
        for route in app.router.routes():
            template = route.resource.canonical if route.resource is not None else ""
            if route.method in ("HEAD", "OPTIONS") or template.startswith(UNROUTED_PREFIXES):
                continue
            routes.add((service, route.method, template))
    return routes


@dataclass
class World:
    """Real ids: the demo data for reads, fresh customers and accounts for writes."""

    api: Api
    system: LocalSystem
    transaction_id: uuid.UUID  # a committed transfer Alice -> Bob, asked for by Alice

    async def fresh_customer(self) -> uuid.UUID:
        answer = await self.api.call(
            "POST", "customer_service", "/customers", new_customer_body(), auth=token("teller")
        )
        assert answer.status == 201, answer.body
        return uuid.UUID(answer.data["customer_id"])

    async def fresh_account(self, owner: uuid.UUID | None = None, balance: int = 10) -> tuple[uuid.UUID, uuid.UUID]:
        owner = owner or await self.fresh_customer()
        return owner, await self.api.open_account(owner, balance)

    async def service_call(self, path: str, body: dict[str, Any]) -> None:
        answer = await self.api.call("POST", "accounts_service", path, body, auth=coordinator_token())
        assert answer.status == 200, answer.body


@dataclass
class Target:
    """One concrete request, whose resources the `owner` customer owns, and what a refusal must leave alone."""

    path: str
    owner: uuid.UUID
    body: Any = None
    snapshot: Callable[[], Awaitable[Any]] | None = None
    cleanup: Callable[[], Awaitable[None]] | None = None


def new_customer_body() -> dict[str, Any]:
    return {
        "name": "Matrix Person",
        "address": "1 Matrix Road",
        "contact_info": {"email": f"matrix-{uuid.uuid4().hex[:12]}@example.com", "phone": "+1 555 0100"},
    }


async def account_state(world: World, account_id: uuid.UUID) -> list[Any]:
    return [
        tuple(row)
        for row in await fetch(
            world.system,
            "accounts_service",
            "SELECT balance, transaction_lock, pending_change FROM accounts WHERE account_id = $1",
            account_id,
        )
    ]


async def customer_state(world: World, customer_id: uuid.UUID) -> list[Any]:
    return [
        tuple(row)
        for row in await fetch(
            world.system, "customer_service", "SELECT * FROM customers WHERE customer_id = $1", customer_id
        )
    ]


async def customer_accounts(world: World, customer_id: uuid.UUID) -> list[Any]:
    return [
        tuple(row)
        for row in await fetch(
            world.system,
            "accounts_service",
            "SELECT account_id, balance FROM accounts WHERE customer_id = $1",
            customer_id,
        )
    ]


# ----- how to aim each route -----


async def read_alice_customer(world: World) -> Target:
    return Target(f"/customers/{ALICE}", ALICE)


async def customer_search(world: World) -> Target:
    return Target(f"/customers/search/email?{ALICE_EMAIL_QUERY}", ALICE)


async def list_customers(world: World) -> Target:
    return Target("/customers?limit=5", ALICE)


async def login(world: World) -> Target:
    return Target("/auth/login", ALICE, body={"username": "alice", "password": "alice123"})


async def refresh_session(world: World) -> Target:
    """A real refresh token of a fresh login: the route is public, the bearer plays no part."""
    answer = await world.api.call(
        "POST", "customer_service", "/auth/login", {"username": "alice", "password": "alice123"}
    )
    assert answer.status == 200, answer.body
    return Target("/auth/refresh", ALICE, body={"refresh_token": answer.data["refresh_token"]})


async def create_customer(world: World) -> Target:
    body = new_customer_body()
    email = body["contact_info"]["email"]

    async def snapshot() -> Any:
        return [
            tuple(row)
            for row in await fetch(
                world.system,
                "customer_service",
                "SELECT customer_id FROM customers WHERE contact_info ->> 'email' = $1",
                email,
            )
        ]

    return Target("/customers", ALICE, body=body, snapshot=snapshot)


async def update_customer(world: World) -> Target:
    owner = await world.fresh_customer()
    return Target(
        f"/customers/{owner}",
        owner,
        body={"address": f"{uuid.uuid4().hex[:8]} New Street"},
        snapshot=lambda: customer_state(world, owner),
    )


async def delete_customer(world: World) -> Target:
    owner = await world.fresh_customer()
    return Target(f"/customers/{owner}", owner, snapshot=lambda: customer_state(world, owner))


async def open_account(world: World) -> Target:
    owner = await world.fresh_customer()
    return Target(
        "/accounts",
        owner,
        body={"customer_id": str(owner), "initial_balance": 5},
        snapshot=lambda: customer_accounts(world, owner),
    )


async def alice_accounts(world: World) -> Target:
    return Target(f"/accounts/customer/{ALICE}", ALICE)


def alice_account(suffix: str = "") -> Callable[[World], Awaitable[Target]]:
    async def aim(world: World) -> Target:
        return Target(f"/accounts/{ALICE_MAIN}{suffix}", ALICE)

    return aim


async def adjust_balance(world: World) -> Target:
    owner, account_id = await world.fresh_account()
    return Target(
        f"/accounts/{account_id}/balance", owner, body={"balance": 7}, snapshot=lambda: account_state(world, account_id)
    )


async def unsafe_withdraw(world: World) -> Target:
    owner, account_id = await world.fresh_account()
    return Target(
        f"/accounts/{account_id}/unsafe-withdraw",
        owner,
        body={"amount": 1},
        snapshot=lambda: account_state(world, account_id),
    )


def protocol_step(step: str) -> Callable[[World], Awaitable[Target]]:
    """prepare on a fresh account; commit and abort of a transfer a service prepared just before."""

    async def aim(world: World) -> Target:
        owner, account_id = await world.fresh_account()
        body = {"transaction_id": str(uuid.uuid4()), "account_id": str(account_id), "amount": -1}
        if step != "prepare":
            await world.service_call("/2pc/prepare", body)

        async def cleanup() -> None:  # never leave a lock for recovery to find
            answer = await world.api.call("POST", "accounts_service", "/2pc/abort", body, auth=coordinator_token())
            assert answer.status in (200, 409), answer.body

        return Target(
            f"/2pc/{step}", owner, body=body, snapshot=lambda: account_state(world, account_id), cleanup=cleanup
        )

    return aim


def protocol_batch_step(step: str) -> Callable[[World], Awaitable[Target]]:
    """The batch routes, each with a one-transfer batch shaped as protocol_step's single message."""
    single = protocol_step(step)

    async def aim(world: World) -> Target:
        target = await single(world)
        return Target(
            f"/2pc/{step}-batch",
            target.owner,
            body={"transfers": [target.body]},
            snapshot=target.snapshot,
            cleanup=target.cleanup,
        )

    return aim


async def owner_lookup(world: World) -> Target:
    return Target("/accounts/owners", ALICE, body={"account_ids": [str(ALICE_MAIN)]})


async def lock_status(world: World) -> Target:
    return Target(f"/2pc/status/{ALICE_MAIN}", ALICE)


async def leg_status(world: World) -> Target:
    return Target(f"/2pc/status/{ALICE_MAIN}/{world.transaction_id}", ALICE)


async def create_transfer(world: World) -> Target:
    owner, source = await world.fresh_account(balance=10)
    _, destination = await world.fresh_account(owner, balance=0)

    async def snapshot() -> Any:
        return await account_state(world, source) + await account_state(world, destination)

    return Target(
        "/transfers",
        owner,
        body={"source_account_id": str(source), "destination_account_id": str(destination), "amount": 1},
        snapshot=snapshot,
    )


def alice_transfer(suffix: str, prefix: str = "/transactions") -> Callable[[World], Awaitable[Target]]:
    async def aim(world: World) -> Target:
        return Target(f"{prefix}/{world.transaction_id}{suffix}", ALICE)

    return aim


def alice_history(prefix: str) -> Callable[[World], Awaitable[Target]]:
    async def aim(world: World) -> Target:
        return Target(f"{prefix}/{ALICE_MAIN}?limit=5", ALICE)

    return aim


def fixed(path: str) -> Callable[[World], Awaitable[Target]]:
    async def aim(world: World) -> Target:
        return Target(path, ALICE)

    return aim


async def arm_nothing(world: World) -> Target:
    """A zero-second stall: the admin's success must not break the next transfer of other tests."""
    return Target(
        "/demo/failpoints", ALICE, body={"failpoint": "after_prepare_before_answer", "action": "stall", "seconds": 0}
    )


# ----- the table: who gets which status -----


def expect(
    owner: int,
    other: int,
    teller: int,
    admin: int,
    service: int,
    *,
    unauthenticated: int = 401,
    coordinator: int | None = None,
) -> dict[str, int]:
    """`coordinator` (a token signed with the coordinator key) answers like `service` unless given."""
    return {
        **dict.fromkeys(UNAUTHENTICATED, unauthenticated),
        "owner": owner,
        "other_customer": other,
        "teller": teller,
        "admin": admin,
        "service": service,
        "coordinator": service if coordinator is None else coordinator,
    }


OWNER_STAFF_SERVICE = expect(200, 403, 200, 200, 200)
STAFF_ONLY = expect(403, 403, 200, 200, 403)
STAFF_OR_SERVICE = expect(403, 403, 200, 200, 200)
ADMIN_ONLY = expect(403, 403, 403, 200, 403)
COORDINATOR_ONLY = expect(403, 403, 403, 403, 403, coordinator=200)


@dataclass(frozen=True)
class Row:
    service: str
    method: str
    template: str
    aim: Callable[[World], Awaitable[Target]] = field(compare=False)
    statuses: dict[str, int] = field(compare=False)


ROWS = [
    Row("customer_service", "POST", "/auth/login", login, expect(200, 200, 200, 200, 200, unauthenticated=200)),
    Row(
        "customer_service",
        "POST",
        "/auth/refresh",
        refresh_session,
        expect(200, 200, 200, 200, 200, unauthenticated=200),
    ),
    Row("customer_service", "POST", "/auth/logout", fixed("/auth/logout"), expect(200, 200, 200, 200, 403)),
    Row(
        "customer_service",
        "GET",
        "/auth/revocations",
        fixed("/auth/revocations?limit=5"),
        expect(403, 403, 403, 403, 200),
    ),
    Row("customer_service", "GET", "/customers", list_customers, STAFF_ONLY),
    Row("customer_service", "POST", "/customers", create_customer, expect(403, 403, 201, 201, 403)),
    Row("customer_service", "GET", "/customers/search/email", customer_search, STAFF_ONLY),
    Row("customer_service", "GET", "/customers/{customer_id}", read_alice_customer, OWNER_STAFF_SERVICE),
    Row("customer_service", "PATCH", "/customers/{customer_id}", update_customer, expect(200, 403, 200, 200, 403)),
    Row("customer_service", "DELETE", "/customers/{customer_id}", delete_customer, ADMIN_ONLY),
    Row(
        "customer_service",
        "GET",
        "/customers/{customer_id}/exists",
        fixed(f"/customers/{ALICE}/exists"),
        expect(200, 200, 200, 200, 200),
    ),
    Row("accounts_service", "GET", "/accounts/customer/{customer_id}", alice_accounts, OWNER_STAFF_SERVICE),
    Row("accounts_service", "POST", "/accounts", open_account, expect(403, 403, 201, 201, 403)),
    Row("accounts_service", "POST", "/accounts/owners", owner_lookup, STAFF_OR_SERVICE),
    Row("accounts_service", "GET", "/accounts/{account_id}", alice_account(), OWNER_STAFF_SERVICE),
    Row(
        "accounts_service",
        "GET",
        "/accounts/{account_id}/effective-balance",
        alice_account("/effective-balance"),
        OWNER_STAFF_SERVICE,
    ),
    Row(
        "accounts_service",
        "GET",
        "/accounts/{account_id}/ledger",
        alice_account("/ledger?limit=5"),
        OWNER_STAFF_SERVICE,
    ),
    Row("accounts_service", "PATCH", "/accounts/{account_id}/balance", adjust_balance, ADMIN_ONLY),
    Row("accounts_service", "POST", "/accounts/{account_id}/unsafe-withdraw", unsafe_withdraw, ADMIN_ONLY),
    Row("accounts_service", "POST", "/2pc/prepare", protocol_step("prepare"), COORDINATOR_ONLY),
    Row("accounts_service", "POST", "/2pc/commit", protocol_step("commit"), COORDINATOR_ONLY),
    Row("accounts_service", "POST", "/2pc/abort", protocol_step("abort"), COORDINATOR_ONLY),
    Row("accounts_service", "POST", "/2pc/prepare-batch", protocol_batch_step("prepare"), COORDINATOR_ONLY),
    Row("accounts_service", "POST", "/2pc/commit-batch", protocol_batch_step("commit"), COORDINATOR_ONLY),
    Row("accounts_service", "POST", "/2pc/abort-batch", protocol_batch_step("abort"), COORDINATOR_ONLY),
    Row("accounts_service", "GET", "/2pc/status/{account_id}", lock_status, STAFF_OR_SERVICE),
    Row("accounts_service", "GET", "/2pc/status/{account_id}/{transaction_id}", leg_status, STAFF_OR_SERVICE),
    Row("transactions_service", "POST", "/transfers", create_transfer, expect(200, 403, 200, 200, 403)),
    Row(
        "transactions_service",
        "GET",
        "/transfers/status/{transaction_id}",
        alice_transfer("", "/transfers/status"),
        OWNER_STAFF_SERVICE,
    ),
    Row(
        "transactions_service",
        "GET",
        "/transfers/history/{account_id}",
        alice_history("/transfers/history"),
        OWNER_STAFF_SERVICE,
    ),
    Row(
        "transactions_service",
        "GET",
        "/transactions/account/{account_id}",
        alice_history("/transactions/account"),
        OWNER_STAFF_SERVICE,
    ),
    Row(
        "transactions_service",
        "GET",
        "/transactions/status/{status}",
        fixed("/transactions/status/committed"),
        STAFF_ONLY,
    ),
    Row(
        "transactions_service",
        "GET",
        "/transactions/monitoring/pending",
        fixed("/transactions/monitoring/pending"),
        ADMIN_ONLY,
    ),
    Row(
        "transactions_service",
        "GET",
        "/transactions/monitoring/stats",
        fixed("/transactions/monitoring/stats"),
        ADMIN_ONLY,
    ),
    Row("transactions_service", "GET", "/transactions/{transaction_id}", alice_transfer(""), OWNER_STAFF_SERVICE),
    Row(
        "transactions_service",
        "GET",
        "/transactions/{transaction_id}/outcome",
        alice_transfer("/outcome"),
        STAFF_OR_SERVICE,
    ),
    Row("accounts_service", "GET", "/2pc/locks", fixed("/2pc/locks?limit=5"), STAFF_OR_SERVICE),
    Row("accounts_service", "POST", "/demo/failpoints", arm_nothing, ADMIN_ONLY),
    # The push channel checks access in-band after the WebSocket upgrade (tests/e2e/test_push.py); a plain GET
    # is refused alike for everyone.
    Row("transactions_service", "GET", "/ws", fixed("/ws"), expect(400, 400, 400, 400, 400, unauthenticated=400)),
    *(
        Row(service, "GET", "/audit", fixed("/audit?limit=5"), ADMIN_ONLY)
        for service in ("customer_service", "accounts_service", "transactions_service")
    ),
]


def unauthenticated_status(row: Row) -> int:
    return row.statuses["none"]


def test_every_route_has_a_row() -> None:
    served = router_routes()
    table = {(row.service, row.method, row.template) for row in ROWS}
    assert served - table == set(), "routes without a row in the authorization matrix"
    assert table - served == set(), "rows for routes no app serves"
    assert all(set(row.statuses) == set(PRINCIPALS) for row in ROWS)


def unsigned(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def authorization(principal: str, row: Row, owner: uuid.UUID) -> str | None:
    """The bearer token each kind of caller presents; the forged ones all claim to be admin."""
    now = datetime.now(UTC)
    app_name = {value: key for key, value in SERVICE_BY_APP_NAME.items()}[row.service]
    tokens: dict[str, Callable[[], str | None]] = {
        "none": lambda: None,
        "bad_signature": lambda: token("admin", secret="not-the-secret-0123456789-abcdefghijklmnop"),
        "expired": lambda: issue_token(TEST_JWT_SECRET, role="admin", ttl_s=60, now=now - timedelta(hours=2))[0],
        "alg_none": lambda: unsigned(
            {"role": "admin", "sub": "mallory", "iat": int(now.timestamp()), "exp": int(now.timestamp()) + 3600}
        ),
        "owner": lambda: token("customer", owner),
        "other_customer": lambda: token("customer", CAROL),
        "teller": lambda: token("teller"),
        "admin": lambda: token("admin"),
        "service": lambda: issue_token(TEST_TOKEN_KEYS, role="service", audience=app_name, ttl_s=60)[0],
        "coordinator": lambda: issue_token(
            TokenKeys(secret=TEST_JWT_SECRET, coordinator_secret=TEST_COORDINATOR_SECRET),
            role="service",
            subject="transactions-service",
            audience=app_name,
            ttl_s=60,
            coordinator=True,
        )[0],
        "service_other_audience": lambda: issue_token(
            TEST_TOKEN_KEYS, role="service", ttl_s=60, audience=[name for name in SERVICE_NAMES if name != app_name]
        )[0],
    }
    return tokens[principal]()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def alice_transfer_id(system: LocalSystem) -> uuid.UUID:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        transfer = await Api(session, system).transfer(ALICE_MAIN, BOB_MAIN, "0.01", auth=token("customer", ALICE))
    assert transfer.status == 200, transfer.body
    return uuid.UUID(transfer.data["transaction_id"])


@pytest_asyncio.fixture(loop_scope="session")
async def world(api: Api, system: LocalSystem, alice_transfer_id: uuid.UUID) -> World:
    return World(api, system, alice_transfer_id)


CELLS = [
    pytest.param(row, principal, id=f"{row.method} {row.service.split('_')[0]} {row.template} {principal}")
    for row in ROWS
    for principal in PRINCIPALS
]


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("row, principal", CELLS)
async def test_matrix_cell(world: World, row: Row, principal: str) -> None:
    target = await row.aim(world)
    before = await target.snapshot() if target.snapshot else None
    try:
        answer = await world.api.call(
            row.method, row.service, target.path, target.body, auth=authorization(principal, row, target.owner)
        )
        expected = row.statuses[principal]
        if principal == "coordinator" and row.service not in COORDINATOR_KEY_HOLDERS:
            expected = unauthenticated_status(row)  # a service without the key cannot even verify it
        assert answer.status == expected, answer.body
        if answer.status >= 400:
            assert answer.body["success"] is False
            if target.snapshot is not None:
                assert await target.snapshot() == before, "a refused request changed something"
    finally:
        if target.cleanup is not None:
            await target.cleanup()
