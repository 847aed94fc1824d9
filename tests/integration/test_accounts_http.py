"""accounts_service over HTTP against a real PostgreSQL database: every route, its roles, its errors, and the
2PC participant endpoints with both message shapes. The customer service and the coordinator are refused
(port 9), so opening an account must answer 503 and participant recovery never resolves anything here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import participant, service
from accounts_service.app import create_app
from accounts_service.domain import Leg
from accounts_service.handlers import MAX_CHANGES_PER_PREPARE
from accounts_service.settings import Settings
from shared import jsonio
from shared.auth import issue_token
from shared.database import create_engine
from tests.conftest import TEST_JWT_SECRET, TEST_KEYS, TEST_TOKEN_KEYS, bearer, coordinator_token, serve, token
from tests.integration.test_participant import account_states, log_rows

REFUSING_URL = "http://127.0.0.1:9"
MALFORMED_ID = "not-a-uuid"
UNSAFE_PAUSE_S = 0.3


def settings_for(database_url: str, log_dir: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        **TEST_KEYS,
        "log_dir": log_dir,
        "demo_endpoints": True,
        "customer_service_url": REFUSING_URL,
        "transactions_service_url": REFUSING_URL,
        "prepare_busy_wait_s": 0.05,
        "unsafe_withdraw_pause_s": UNSAFE_PAUSE_S,
        "db_pool_size": 5,
    }
    values.update(overrides)
    return Settings(**values)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(accounts_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TestClient]:
    log_dir = str(tmp_path_factory.mktemp("accounts-logs"))
    async with serve(create_app(settings_for(accounts_db_url, log_dir))) as test_client:
        yield test_client


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def engine(accounts_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(accounts_db_url, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


async def open_account(
    engine: AsyncEngine, balance: Decimal | int | str = 100, customer_id: UUID | None = None
) -> dict[str, Any]:
    return await service.open_account(engine, customer_id or uuid.uuid4(), Decimal(balance))


async def read_body(response: Any) -> dict[str, Any]:
    return jsonio.loads(await response.text())


async def data_of(response: Any, status: int = 200) -> Any:
    body = await read_body(response)
    assert response.status == status, body
    assert body["success"] is True
    return body["data"]


async def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    body = await read_body(response)
    assert response.status == status, body
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    return body


SERVICE = {"Authorization": f"Bearer {coordinator_token()}"}  # the coordinator: the only caller of /2pc writes
EXPIRED_ADMIN_TOKEN = issue_token(TEST_JWT_SECRET, role="admin", ttl_s=1, now=datetime.now(UTC) - timedelta(hours=1))[0]
ADMIN = bearer("admin")


# --- reading accounts ------------------------------------------------------------------------------------------


async def test_owner_reads_their_account(client, engine):
    customer_id = uuid.uuid4()
    account = await open_account(engine, "123.45", customer_id)
    owner = bearer("customer", customer_id)
    data = await data_of(await client.get(f"/accounts/{account['account_id']}", headers=owner))
    assert data["account_id"] == str(account["account_id"])
    assert data["customer_id"] == str(customer_id)
    assert data["balance"] == Decimal("123.45")
    assert data["transaction_lock"] is None
    assert data["pending_change"] is None


async def test_another_customer_may_not_read_an_account(client, engine):
    account = await open_account(engine)
    response = await client.get(f"/accounts/{account['account_id']}", headers=bearer("customer", uuid.uuid4()))
    await assert_error(response, 403, "FORBIDDEN")


@pytest.mark.parametrize("role", ["teller", "admin", "service"])
async def test_staff_and_services_read_any_account(client, engine, role):
    account = await open_account(engine, 7)
    data = await data_of(await client.get(f"/accounts/{account['account_id']}", headers=bearer(role)))
    assert data["balance"] == 7


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": f"Bearer {token('admin', secret='some-other-secret-0123456789-0123456789')}"},
        {"Authorization": f"Bearer {EXPIRED_ADMIN_TOKEN}"},
    ],
    ids=["none", "empty", "garbage", "basic", "wrong-secret", "expired"],
)
async def test_reading_without_a_valid_token_is_unauthorized(client, engine, headers):
    account = await open_account(engine)
    await assert_error(await client.get(f"/accounts/{account['account_id']}", headers=headers), 401, "UNAUTHORIZED")


async def test_malformed_and_unknown_account_ids(client):
    await assert_error(await client.get(f"/accounts/{MALFORMED_ID}", headers=bearer("teller")), 400, "VALIDATION_ERROR")
    await assert_error(await client.get(f"/accounts/{uuid.uuid4()}", headers=bearer("teller")), 404, "NOT_FOUND")
    await assert_error(
        await client.get(f"/accounts/{uuid.uuid4()}/effective-balance", headers=bearer("admin")), 404, "NOT_FOUND"
    )


@pytest.mark.parametrize("role", ["service", "teller", "admin"])
async def test_owners_names_each_known_account_once_and_leaves_unknown_ones_out(client, engine, role):
    customer_id = uuid.uuid4()
    first, second = [await open_account(engine, 1, customer_id) for _ in range(2)]
    unknown = uuid.uuid4()
    named = [str(first["account_id"]), str(unknown), str(second["account_id"]), str(first["account_id"])]
    data = await data_of(await client.post("/accounts/owners", json={"account_ids": named}, headers=bearer(role)))
    assert data["owners"] == [
        {"account_id": str(account["account_id"]), "customer_id": str(customer_id)} for account in (first, second)
    ]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"account_ids": []},
        {"account_ids": [MALFORMED_ID]},
        {"account_ids": "x"},
        {"account_ids": [str(uuid.uuid4())] * 257},
    ],
    ids=["missing", "empty", "malformed", "not-a-list", "too-many"],
)
async def test_bad_owner_lookups_are_400(client, body):
    await assert_error(
        await client.post("/accounts/owners", json=body, headers=bearer("service")), 400, "VALIDATION_ERROR"
    )


async def test_customers_may_not_look_up_owners(client, engine):
    customer_id = uuid.uuid4()
    account = await open_account(engine, 1, customer_id)
    body = {"account_ids": [str(account["account_id"])]}
    response = await client.post("/accounts/owners", json=body, headers=bearer("customer", customer_id))
    await assert_error(response, 403, "FORBIDDEN")


async def test_effective_balance_subtracts_a_pending_debit_but_not_a_pending_credit(client, engine):
    customer_id = uuid.uuid4()
    source = await open_account(engine, 100, customer_id)
    destination = await open_account(engine, 10, customer_id)
    transaction_id = uuid.uuid4()
    changes = [Leg(source["account_id"], Decimal("-30.5")), Leg(destination["account_id"], Decimal("30.5"))]
    assert (await participant.prepare(engine, transaction_id, changes)).yes
    try:
        headers = bearer("customer", customer_id)
        debited = await data_of(
            await client.get(f"/accounts/{source['account_id']}/effective-balance", headers=headers)
        )
        assert debited["balance"] == 100
        assert debited["pending_change"] == Decimal("-30.5")
        assert debited["effective_balance"] == Decimal("69.5")
        assert debited["transaction_lock"] == str(transaction_id)
        # The original system's names for the same facts.
        assert (debited["current_balance"], debited["is_locked"], debited["transaction_id"]) == (
            100,
            True,
            str(transaction_id),
        )
        credited = await data_of(
            await client.get(f"/accounts/{destination['account_id']}/effective-balance", headers=headers)
        )
        assert credited["effective_balance"] == 10
        other = bearer("customer", uuid.uuid4())
        await assert_error(
            await client.get(f"/accounts/{source['account_id']}/effective-balance", headers=other), 403, "FORBIDDEN"
        )
    finally:
        await participant.abort(engine, transaction_id, changes)


async def test_customer_accounts_lists_a_customers_accounts(client, engine):
    customer_id = uuid.uuid4()
    opened = {(await open_account(engine, balance, customer_id))["account_id"] for balance in (1, 2)}
    for headers in (bearer("customer", customer_id), bearer("teller"), bearer("service")):
        data = await data_of(await client.get(f"/accounts/customer/{customer_id}", headers=headers))
        assert {UUID(row["account_id"]) for row in data} == opened
    await assert_error(
        await client.get(f"/accounts/customer/{customer_id}", headers=bearer("customer", uuid.uuid4())),
        403,
        "FORBIDDEN",
    )
    assert await data_of(await client.get(f"/accounts/customer/{uuid.uuid4()}", headers=bearer("admin"))) == []
    await assert_error(
        await client.get(f"/accounts/customer/{MALFORMED_ID}", headers=bearer("admin")), 400, "VALIDATION_ERROR"
    )
    await assert_error(await client.get(f"/accounts/customer/{customer_id}"), 401, "UNAUTHORIZED")


async def test_ledger_starts_with_the_opening_balance(client, engine):
    account = await open_account(engine, "55.5")
    rows = await data_of(await client.get(f"/accounts/{account['account_id']}/ledger", headers=ADMIN))
    assert [(row["kind"], row["change"]) for row in rows] == [("opening", Decimal("55.5"))]
    await assert_error(
        await client.get(f"/accounts/{account['account_id']}/ledger?limit=0", headers=ADMIN), 400, "VALIDATION_ERROR"
    )


# --- opening an account ----------------------------------------------------------------------------------------


async def test_opening_an_account_when_the_customer_service_is_down_is_503(client):
    response = await client.post(
        "/accounts", json={"customer_id": str(uuid.uuid4()), "initial_balance": 10}, headers=bearer("teller")
    )
    await assert_error(response, 503, "SERVICE_UNAVAILABLE")


async def test_opening_an_account_is_for_staff_and_validates_first(client):
    body = {"customer_id": str(uuid.uuid4()), "initial_balance": 10}
    await assert_error(
        await client.post("/accounts", json=body, headers=bearer("customer", uuid.uuid4())), 403, "FORBIDDEN"
    )
    await assert_error(await client.post("/accounts", json=body, headers=SERVICE), 403, "FORBIDDEN")
    for bad in ({"customer_id": MALFORMED_ID}, {}, {"customer_id": str(uuid.uuid4()), "initial_balance": -1}):
        await assert_error(await client.post("/accounts", json=bad, headers=ADMIN), 400, "VALIDATION_ERROR")


# --- admin balance adjustment ----------------------------------------------------------------------------------


async def test_admin_sets_a_balance_and_the_ledger_records_it(client, engine):
    account = await open_account(engine, 100)
    data = await data_of(
        await client.patch(f"/accounts/{account['account_id']}/balance", json={"balance": "250.75"}, headers=ADMIN)
    )
    assert data["balance"] == Decimal("250.75")
    states = await account_states(engine, [account["account_id"]])
    assert states[account["account_id"]]["ledger_sum"] == Decimal("250.75")
    data = await data_of(
        await client.patch(f"/accounts/{account['account_id']}/balance", json={"balance": 0}, headers=ADMIN)
    )
    assert data["balance"] == 0


@pytest.mark.parametrize("role", ["teller", "customer", "service"])
async def test_only_admins_set_balances(client, engine, role):
    account = await open_account(engine, 100)
    response = await client.patch(
        f"/accounts/{account['account_id']}/balance",
        json={"balance": 1},
        headers=bearer(role, account["customer_id"] if role == "customer" else None),
    )
    await assert_error(response, 403, "FORBIDDEN")
    assert (await account_states(engine, [account["account_id"]]))[account["account_id"]]["balance"] == 100


@pytest.mark.parametrize(
    "body",
    [
        {"balance": -1},
        {"balance": "-0.01"},
        {"balance": "1.00001"},
        {"balance": 1.23456},
        {"balance": "abc"},
        {"balance": True},
        {"balance": None},
        {},
        {"balance": [1]},
        {"balance": "1e20"},
    ],
    ids=repr,
)
async def test_bad_balances_are_refused(client, engine, body):
    account = await open_account(engine, 100)
    response = await client.patch(f"/accounts/{account['account_id']}/balance", json=body, headers=ADMIN)
    await assert_error(response, 400, "VALIDATION_ERROR")
    assert (await account_states(engine, [account["account_id"]]))[account["account_id"]]["balance"] == 100


async def test_setting_the_balance_of_a_locked_account_is_409(client, engine):
    source = await open_account(engine, 100)
    destination = await open_account(engine, 0)
    transaction_id = uuid.uuid4()
    changes = [Leg(source["account_id"], Decimal(-10)), Leg(destination["account_id"], Decimal(10))]
    assert (await participant.prepare(engine, transaction_id, changes)).yes
    try:
        response = await client.patch(f"/accounts/{source['account_id']}/balance", json={"balance": 5}, headers=ADMIN)
        await assert_error(response, 409, "ACCOUNT_LOCKED")
        assert (await account_states(engine, [source["account_id"]]))[source["account_id"]]["balance"] == 100
    finally:
        await participant.abort(engine, transaction_id, changes)


async def test_setting_the_balance_of_unknown_or_malformed_accounts(client):
    await assert_error(
        await client.patch(f"/accounts/{uuid.uuid4()}/balance", json={"balance": 1}, headers=ADMIN), 404, "NOT_FOUND"
    )
    await assert_error(
        await client.patch(f"/accounts/{MALFORMED_ID}/balance", json={"balance": 1}, headers=ADMIN),
        400,
        "VALIDATION_ERROR",
    )


# --- the 2PC endpoints -----------------------------------------------------------------------------------------


def changes_body(transaction_id: UUID, *legs: tuple[UUID, Any]) -> dict[str, Any]:
    return {
        "transaction_id": str(transaction_id),
        "changes": [{"account_id": str(account_id), "change": str(change)} for account_id, change in legs],
    }


@pytest.mark.parametrize("path", ["/2pc/prepare", "/2pc/commit", "/2pc/abort"])
@pytest.mark.parametrize("role", ["admin", "teller", "customer", "service"])
async def test_protocol_endpoints_are_for_services_only(client, engine, path, role):
    source = await open_account(engine, 100)
    destination = await open_account(engine, 0)
    transaction_id = uuid.uuid4()
    body = changes_body(transaction_id, (source["account_id"], -10), (destination["account_id"], 10))
    await assert_error(
        await client.post(path, json=body, headers=bearer(role, source["customer_id"])), 403, "FORBIDDEN"
    )
    await assert_error(await client.post(path, json=body), 401, "UNAUTHORIZED")
    assert await log_rows(engine, transaction_id) == {}


def service_key_token(subject: str) -> dict[str, str]:
    """A service token signed with the key every service holds (customer_service too), not the coordinator's."""
    return {
        "Authorization": "Bearer "
        + issue_token(TEST_TOKEN_KEYS, role="service", subject=subject, audience="accounts-service", ttl_s=60)[0]
    }


@pytest.mark.parametrize("path", ["/2pc/prepare", "/2pc/commit", "/2pc/abort"])
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        # Minted when the test runs, not when it is collected: a service token lives minutes, a suite longer.
        (lambda: service_key_token("transactions-service"), 403),  # the right name, the wrong key
        (lambda: service_key_token("customer-service"), 403),
        (lambda: {"Authorization": f"Bearer {coordinator_token(subject='customer-service')}"}, 403),
        (
            lambda: {"Authorization": f"Bearer {coordinator_token(secret='another-coordinator-secret-0123456789abc')}"},
            401,
        ),
    ],
    ids=["service key naming the coordinator", "service key", "coordinator key, other subject", "wrong key"],
)
async def test_only_the_coordinator_drives_the_participant(client, engine, path, headers, status):
    """Found: any service token (customer_service could mint one) prepared +1e9 on one account and committed it."""
    account = await open_account(engine, 0)
    transaction_id = uuid.uuid4()
    body = changes_body(transaction_id, (account["account_id"], "1000000000"))
    response = await client.post(path, json=body, headers=headers())
    await assert_error(response, status, "FORBIDDEN" if status == 403 else "UNAUTHORIZED")
    assert await log_rows(engine, transaction_id) == {}
    assert (await account_states(engine, [account["account_id"]]))[account["account_id"]]["balance"] == 0


@pytest.mark.parametrize("legs", [((0, "-10"), (1, "11")), ((0, "10"), (1, "10")), ((0, "-1"), (1, "0.9999"))])
async def test_legs_held_together_must_sum_to_zero(client, engine, legs):
    accounts = [await open_account(engine, 100), await open_account(engine, 100)]
    transaction_id = uuid.uuid4()
    body = changes_body(transaction_id, *((accounts[index]["account_id"], change) for index, change in legs))
    await assert_error(await client.post("/2pc/prepare", json=body, headers=SERVICE), 400, "VALIDATION_ERROR")
    assert await log_rows(engine, transaction_id) == {}


async def test_a_one_leg_prepare_must_balance_the_leg_already_held(client, engine):
    source, destination = await open_account(engine, 100), await open_account(engine, 0)
    transaction_id = uuid.uuid4()
    debit = {"transaction_id": str(transaction_id), "account_id": str(source["account_id"]), "amount": "-30"}
    credit = {"transaction_id": str(transaction_id), "account_id": str(destination["account_id"]), "amount": "31"}
    assert (await data_of(await client.post("/2pc/prepare", json=debit, headers=SERVICE)))["vote"] == "yes"
    await assert_error(await client.post("/2pc/prepare", json=credit, headers=SERVICE), 400, "VALIDATION_ERROR")
    states = await account_states(engine, [destination["account_id"]])
    assert states[destination["account_id"]]["transaction_lock"] is None


async def test_prepare_commit_with_the_changes_shape(client, engine):
    source = await open_account(engine, 100)
    destination = await open_account(engine, 20)
    source_id, destination_id = source["account_id"], destination["account_id"]
    transaction_id = uuid.uuid4()
    body = changes_body(transaction_id, (source_id, "-40.25"), (destination_id, "40.25"))
    vote = await data_of(await client.post("/2pc/prepare", json=body, headers=SERVICE))
    assert vote == {"transaction_id": str(transaction_id), "vote": "yes", "reason": None}
    status = await data_of(await client.get(f"/2pc/status/{source_id}", headers=SERVICE))
    assert status["transaction_lock"] == str(transaction_id)
    assert status["pending_change"] == Decimal("-40.25")
    assert (await data_of(await client.post("/2pc/prepare", json=body, headers=SERVICE)))["vote"] == "yes"
    committed = await data_of(
        await client.post("/2pc/commit", json={"transaction_id": str(transaction_id)}, headers=SERVICE)
    )
    assert committed["state"] == "committed"
    assert {(leg["account_id"], leg["state"]) for leg in committed["legs"]} == {
        (str(source_id), "committed"),
        (str(destination_id), "committed"),
    }
    again = await data_of(await client.post("/2pc/commit", json=body, headers=SERVICE))
    assert again["state"] == "committed"
    leg = await data_of(await client.get(f"/2pc/status/{destination_id}/{transaction_id}", headers=SERVICE))
    assert leg["state"] == "committed"
    assert leg["change"] == Decimal("40.25")
    states = await account_states(engine, [source_id, destination_id])
    assert states[source_id]["balance"] == Decimal("59.75")
    assert states[destination_id]["balance"] == Decimal("60.25")
    assert all(state["transaction_lock"] is None for state in states.values())
    assert all(state["balance"] == state["ledger_sum"] for state in states.values())
    await assert_error(await client.post("/2pc/abort", json=body, headers=SERVICE), 409, "CONFLICT_ERROR")


async def test_prepare_abort_with_the_single_leg_shape(client, engine):
    source = await open_account(engine, 100)
    destination = await open_account(engine, 0)
    source_id, destination_id = source["account_id"], destination["account_id"]
    transaction_id = uuid.uuid4()
    debit = {"transaction_id": str(transaction_id), "account_id": str(source_id), "amount": -30}
    credit = {"transaction_id": str(transaction_id), "account_id": str(destination_id), "amount": "30"}
    assert (await data_of(await client.post("/2pc/prepare", json=debit, headers=SERVICE)))["vote"] == "yes"
    assert (await data_of(await client.post("/2pc/prepare", json=credit, headers=SERVICE)))["vote"] == "yes"
    states = await account_states(engine, [source_id, destination_id])
    assert states[source_id]["pending_change"] == -30
    assert states[destination_id]["pending_change"] == 30
    for leg in (debit, credit, debit):
        aborted = await data_of(await client.post("/2pc/abort", json=leg, headers=SERVICE))
        assert aborted["state"] == "aborted"
        assert [row["state"] for row in aborted["legs"]] == ["aborted"]
    states = await account_states(engine, [source_id, destination_id])
    assert [states[source_id]["balance"], states[destination_id]["balance"]] == [100, 0]
    assert all(state["transaction_lock"] is None for state in states.values())
    late = await data_of(await client.post("/2pc/prepare", json=debit, headers=SERVICE))
    assert late == {"transaction_id": str(transaction_id), "vote": "no", "reason": "already_aborted"}
    await assert_error(
        await client.post("/2pc/commit", json={"transaction_id": str(transaction_id)}, headers=SERVICE),
        409,
        "CONFLICT_ERROR",
    )


async def test_single_leg_commit_applies_only_that_leg(client, engine):
    source = await open_account(engine, 100)
    destination = await open_account(engine, 0)
    source_id, destination_id = source["account_id"], destination["account_id"]
    transaction_id = uuid.uuid4()
    body = changes_body(transaction_id, (source_id, -25), (destination_id, 25))
    assert (await data_of(await client.post("/2pc/prepare", json=body, headers=SERVICE)))["vote"] == "yes"
    leg = {"transaction_id": str(transaction_id), "account_id": str(source_id), "amount": -25}
    committed = await data_of(await client.post("/2pc/commit", json=leg, headers=SERVICE))
    assert [row["account_id"] for row in committed["legs"]] == [str(source_id)]
    states = await account_states(engine, [source_id, destination_id])
    assert states[source_id]["balance"] == 75
    assert states[destination_id]["transaction_lock"] == transaction_id
    await data_of(await client.post("/2pc/commit", json={"transaction_id": str(transaction_id)}, headers=SERVICE))
    states = await account_states(engine, [source_id, destination_id])
    assert [states[source_id]["balance"], states[destination_id]["balance"]] == [75, 25]


async def test_prepare_votes_no_with_a_reason(client, engine):
    poor = await open_account(engine, 5)
    other = await open_account(engine, 0)
    transaction_id = uuid.uuid4()
    body = changes_body(transaction_id, (poor["account_id"], -6), (other["account_id"], 6))
    vote = await data_of(await client.post("/2pc/prepare", json=body, headers=SERVICE))
    assert vote == {"transaction_id": str(transaction_id), "vote": "no", "reason": "insufficient_funds"}
    missing = changes_body(uuid.uuid4(), (poor["account_id"], -1), (uuid.uuid4(), 1))
    assert (await data_of(await client.post("/2pc/prepare", json=missing, headers=SERVICE)))[
        "reason"
    ] == "account_not_found"
    holder = uuid.uuid4()
    held = [Leg(poor["account_id"], Decimal(-1)), Leg(other["account_id"], Decimal(1))]
    assert (await participant.prepare(engine, holder, held)).yes
    try:
        busy = changes_body(uuid.uuid4(), (poor["account_id"], -1), (other["account_id"], 1))
        assert (await data_of(await client.post("/2pc/prepare", json=busy, headers=SERVICE)))[
            "reason"
        ] == "account_busy"
    finally:
        await participant.abort(engine, holder, held)


async def test_commit_of_an_unknown_transfer_is_409(client):
    response = await client.post("/2pc/commit", json={"transaction_id": str(uuid.uuid4())}, headers=SERVICE)
    await assert_error(response, 409, "CONFLICT_ERROR")


async def test_status_of_an_unknown_leg_is_404(client, engine):
    account = await open_account(engine)
    await assert_error(
        await client.get(f"/2pc/status/{account['account_id']}/{uuid.uuid4()}", headers=SERVICE), 404, "NOT_FOUND"
    )
    await assert_error(
        await client.get(f"/2pc/status/{account['account_id']}", headers=bearer("customer", account["customer_id"])),
        403,
        "FORBIDDEN",
    )


def _bad_protocol_bodies(transaction_id: str, source: str, destination: str) -> dict[str, Any]:
    def legs(*pairs: tuple[Any, Any]) -> list[dict[str, Any]]:
        return [{"account_id": account_id, "change": change} for account_id, change in pairs]

    many = [{"account_id": str(uuid.uuid4()), "change": 1} for _ in range(MAX_CHANGES_PER_PREPARE + 1)]
    return {
        "missing transaction_id": {"changes": legs((source, -1), (destination, 1))},
        "null transaction_id": {"transaction_id": None, "changes": legs((source, -1), (destination, 1))},
        "malformed transaction_id": {"transaction_id": MALFORMED_ID, "changes": legs((source, -1), (destination, 1))},
        "numeric transaction_id": {"transaction_id": 12, "changes": legs((source, -1), (destination, 1))},
        "changes not a list": {"transaction_id": transaction_id, "changes": {"account_id": source, "change": -1}},
        "empty changes": {"transaction_id": transaction_id, "changes": []},
        "too many changes": {"transaction_id": transaction_id, "changes": many},
        "change not an object": {"transaction_id": transaction_id, "changes": [source, destination]},
        "duplicate accounts": {"transaction_id": transaction_id, "changes": legs((source, -1), (source, 1))},
        "zero change": {"transaction_id": transaction_id, "changes": legs((source, 0), (destination, 0))},
        "too precise change": {
            "transaction_id": transaction_id,
            "changes": legs((source, "-0.00001"), (destination, "0.00001")),
        },
        "non-number change": {"transaction_id": transaction_id, "changes": legs((source, "lots"), (destination, 1))},
        "boolean change": {"transaction_id": transaction_id, "changes": legs((source, True), (destination, 1))},
        "huge change": {"transaction_id": transaction_id, "changes": legs((source, "-1e12"), (destination, "1e12"))},
        "missing change": {"transaction_id": transaction_id, "changes": [{"account_id": source}]},
        "malformed account": {"transaction_id": transaction_id, "changes": legs((MALFORMED_ID, -1), (destination, 1))},
        "single leg without amount": {"transaction_id": transaction_id, "account_id": source},
        "single leg zero amount": {"transaction_id": transaction_id, "account_id": source, "amount": 0},
        "no legs at all": {"transaction_id": transaction_id},
    }


# Commit and abort without legs are valid (they mean every leg held here), so "no legs at all" is prepare's only.
BAD_BODY_CASES = [
    (path, case)
    for path in ("/2pc/prepare", "/2pc/commit", "/2pc/abort")
    for case in _bad_protocol_bodies("t", "s", "d")
    if path == "/2pc/prepare" or case != "no legs at all"
]


@pytest.mark.parametrize(("path", "case"), BAD_BODY_CASES)
async def test_bad_protocol_bodies_are_400_and_change_nothing(client, engine, path, case):
    source = await open_account(engine, 100)
    destination = await open_account(engine, 0)
    transaction_id = uuid.uuid4()
    body = _bad_protocol_bodies(str(transaction_id), str(source["account_id"]), str(destination["account_id"]))[case]
    await assert_error(await client.post(path, json=body, headers=SERVICE), 400, "VALIDATION_ERROR")
    assert await log_rows(engine, transaction_id) == {}
    states = await account_states(engine, [source["account_id"], destination["account_id"]])
    assert [states[source["account_id"]]["balance"], states[destination["account_id"]]["balance"]] == [100, 0]
    assert all(state["transaction_lock"] is None for state in states.values())


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "{",
        "not json",
        "[]",
        '[{"transaction_id": "x"}]',
        '"a string"',
        "42",
        "null",
        '{"transaction_id": NaN}',
        '{"amount": Infinity}',
        '{"transaction_id": "%(id)s", "transaction_id": "%(id)s"}',
        '{"transaction_id": "%(id)s", "account_id": "%(id)s", "amount": NaN}',
        '{"transaction_id": "%(id)s", "changes": [{"account_id": "%(id)s", "change": -1, "change": 1}]}',
    ],
    ids=repr,
)
@pytest.mark.parametrize("path", ["/2pc/prepare", "/2pc/abort"])
async def test_malformed_json_is_400(client, path, raw):
    text = raw % {"id": uuid.uuid4()} if "%(id)s" in raw else raw
    response = await client.post(path, data=text, headers={**SERVICE, "Content-Type": "application/json"})
    await assert_error(response, 400, "VALIDATION_ERROR")


async def test_malformed_json_to_a_staff_route_is_400(client, engine):
    account = await open_account(engine, 100)
    for raw in ("[1]", '{"balance": 1, "balance": 2}', '{"balance": NaN}', "{oops"):
        response = await client.patch(
            f"/accounts/{account['account_id']}/balance",
            data=raw,
            headers={**ADMIN, "Content-Type": "application/json"},
        )
        await assert_error(response, 400, "VALIDATION_ERROR")
    assert (await account_states(engine, [account["account_id"]]))[account["account_id"]]["balance"] == 100


async def test_an_oversized_body_is_413(client):
    body = '{"transaction_id": "' + "x" * (70 * 1024) + '"}'
    response = await client.post("/2pc/prepare", data=body, headers={**SERVICE, "Content-Type": "application/json"})
    await assert_error(response, 413, "PAYLOAD_TOO_LARGE")


# --- the unsafe demo -------------------------------------------------------------------------------------------


async def test_unsafe_withdraw_loses_an_update_under_concurrency(client, engine):
    account = await open_account(engine, 150)
    path = f"/accounts/{account['account_id']}/unsafe-withdraw"
    first, second = await asyncio.gather(
        client.post(path, json={"amount": 100}, headers=ADMIN), client.post(path, json={"amount": 100}, headers=ADMIN)
    )
    assert (await data_of(first))["balance"] == 50
    assert (await data_of(second))["balance"] == 50
    # 200 was withdrawn from 150 and the balance says 50: one update was lost. That is the demo's point.
    states = await account_states(engine, [account["account_id"]])
    assert states[account["account_id"]]["balance"] == 50
    assert states[account["account_id"]]["ledger_sum"] == -50


async def test_unsafe_withdraw_alone_is_correct_and_checks_funds(client, engine):
    account = await open_account(engine, 150)
    path = f"/accounts/{account['account_id']}/unsafe-withdraw"
    body = await read_body(await client.post(path, json={"amount": "49.99"}, headers=ADMIN))
    assert body["data"]["balance"] == Decimal("100.01")
    assert "racy" in body["warning"] and body["message"]  # the original's top-level warning, beside message
    await assert_error(await client.post(path, json={"amount": 1000}, headers=ADMIN), 409, "INSUFFICIENT_FUNDS")
    await assert_error(await client.post(path, json={"amount": 0}, headers=ADMIN), 400, "VALIDATION_ERROR")
    await assert_error(await client.post(path, json={"amount": 1}, headers=bearer("teller")), 403, "FORBIDDEN")


async def test_unsafe_withdraw_does_not_exist_without_demo_endpoints(accounts_db_url, engine, tmp_path):
    account = await open_account(engine, 150)
    app = create_app(settings_for(accounts_db_url, str(tmp_path), demo_endpoints=False))
    async with serve(app) as safe_client:
        response = await safe_client.post(
            f"/accounts/{account['account_id']}/unsafe-withdraw", json={"amount": 100}, headers=ADMIN
        )
        assert response.status == 404
        assert (await read_body(response))["success"] is False
    assert (await account_states(engine, [account["account_id"]]))[account["account_id"]]["balance"] == 150


# --- health ----------------------------------------------------------------------------------------------------


async def test_health_checks_the_database(client):
    data = await data_of(await client.get("/health"))
    assert data["status"] == "healthy"
    assert data["database"]["connected"] is True
    assert data["service"] == "accounts-service"
    assert isinstance(data["uptime"], int) and data["uptime"] >= 0
    assert (await data_of(await client.get("/ready")))["status"] == "healthy"


async def test_ping_needs_nothing(client):
    assert (await data_of(await client.get("/health/ping")))["status"] == "ok"


async def test_unknown_routes_and_methods_answer_json(client):
    await assert_error(await client.get("/nope", headers=ADMIN), 404, "NOT_FOUND")
    await assert_error(await client.delete(f"/accounts/{uuid.uuid4()}", headers=ADMIN), 405, "METHOD_NOT_ALLOWED")
