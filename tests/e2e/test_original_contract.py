"""The original system's clients, unchanged, against ours: ORIGINAL_API.md route by route.

Every call carries a token minted the original's way (HS256 `{customer_id, role}` with iat and a 24 h
exp, no `sub`, signed with the shared secret): `admin-001`, `teller-001`, and Alice as a customer. Each
test asserts the status and every field marked [CLIENT READS]; where we refuse on purpose (ownership,
malformed ids) it asserts our answer. Money must be a JSON number (jsonio reads numbers as Decimal).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import jwt
import pytest

from harness.local_postgres import free_port
from harness.system import LocalSystem
from shared import jsonio
from tests.conftest import TEST_JWT_SECRET
from tests.e2e.conftest import ALICE, ALICE_MAIN, BOB, BOB_MAIN, Answer, Api, fetch

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

CAROL = uuid.UUID("550e8400-e29b-41d4-a716-446655440003")
CAROL_MAIN = uuid.UUID("660e8400-e29b-41d4-a716-446655440005")
ORIGINAL_TOKEN_TTL_S = 24 * 3600
CONCURRENT_REPEATS = 8
REPLICA_READY_S = 30


def original_token(customer_id: str, role: str) -> str:
    """As the original's scripts/generate-tokens.js and bankingClient.login mint it."""
    now = int(time.time())
    return jwt.encode(
        {"customer_id": customer_id, "role": role, "iat": now, "exp": now + ORIGINAL_TOKEN_TTL_S},
        TEST_JWT_SECRET,
        algorithm="HS256",
    )


ADMIN = original_token("admin-001", "admin")
TELLER = original_token("teller-001", "teller")
ALICE_TOKEN = original_token(str(ALICE), "customer")


def is_money(value: Any) -> bool:
    """A JSON number (the original's clients call .toFixed on money), never a string."""
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def is_timestamp(value: Any) -> bool:
    return isinstance(value, str) and datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


def named_transfer(source: uuid.UUID, destination: uuid.UUID, amount: Any, transaction_id: Any) -> dict[str, Any]:
    return {
        "source_account_id": str(source),
        "destination_account_id": str(destination),
        "amount": amount,
        "transaction_id": transaction_id,
    }


async def post_transfer(
    api: Api, body: dict[str, Any], *, auth: str = TELLER, key: str | None = None, base_url: str | None = None
) -> Answer:
    headers = {"Idempotency-Key": key} if key else None
    if base_url is None:
        return await api.call("POST", "transactions_service", "/transfers", body, auth=auth, headers=headers)
    async with api.session.post(
        base_url + "/transfers",
        data=jsonio.dumps(body),
        headers={"Authorization": f"Bearer {auth}", "Content-Type": "application/json", **(headers or {})},
    ) as response:
        return Answer(response.status, jsonio.loads(await response.text()))


async def transfers_named(system: LocalSystem, transaction_id: uuid.UUID | str) -> int:
    rows = await fetch(
        system,
        "transactions_service",
        "SELECT count(*) AS n FROM transactions WHERE transaction_id::text = $1",
        str(transaction_id),
    )
    return rows[0]["n"]


async def transfer_count(system: LocalSystem) -> int:
    return (await fetch(system, "transactions_service", "SELECT count(*) AS n FROM transactions"))[0]["n"]


# --- tokens and health ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["customer_service", "accounts_service", "transactions_service"])
async def test_health_answers_the_original_fields(api: Api, service: str) -> None:
    health = await api.call("GET", service, "/health")
    assert health.status == 200, health.body
    assert health.body["success"] is True
    data = health.data
    assert data["status"] == "healthy"
    assert isinstance(data["service"], str) and data["service"]
    assert is_timestamp(data["timestamp"])
    assert data["database"]["connected"] is True
    assert isinstance(data["uptime"], int) and data["uptime"] > 0  # milliseconds since start
    ping = await api.call("GET", service, "/health/ping")
    assert ping.status == 200 and ping.body["success"] is True


async def test_a_named_admin_resets_a_balance_reads_any_account_and_withdraws_unsafely(api: Api) -> None:
    """scripts/test-race-condition.js and test-concurrent-operations.js, with only their admin token."""
    account = await api.open_account(BOB, Decimal("0"))
    reset = await api.call("PATCH", "accounts_service", f"/accounts/{account}/balance", {"balance": 1000}, auth=ADMIN)
    assert reset.status == 200 and reset.body["success"] is True and reset.data["balance"] == 1000
    read = await api.call("GET", "accounts_service", f"/accounts/{account}", auth=ADMIN)
    assert read.status == 200 and read.data["balance"] == 1000
    assert read.data["pending_change"] is None and read.data["transaction_lock"] is None
    withdrawn = await api.call(
        "POST", "accounts_service", f"/accounts/{account}/unsafe-withdraw", {"amount": 100}, auth=ADMIN
    )
    assert withdrawn.status == 200, withdrawn.body
    assert is_money(withdrawn.data["balance"]) and withdrawn.data["balance"] == 900
    assert isinstance(withdrawn.body["message"], str) and isinstance(withdrawn.body["warning"], str)
    too_much = await api.call(
        "POST", "accounts_service", f"/accounts/{account}/unsafe-withdraw", {"amount": 10_000}, auth=ADMIN
    )
    assert too_much.status >= 400 and too_much.body["success"] is False and too_much.body["error"]["message"]


async def test_a_named_teller_reads_and_a_named_customer_token_is_refused(api: Api) -> None:
    assert (await api.call("GET", "accounts_service", f"/accounts/{ALICE_MAIN}", auth=TELLER)).status == 200
    named_customer = original_token("alice", "customer")  # a customer's id must still be a UUID
    refused = await api.call("GET", "accounts_service", f"/accounts/{ALICE_MAIN}", auth=named_customer)
    assert refused.status == 401 and refused.error_code == "UNAUTHORIZED"
    teller_as_admin = await api.call(
        "PATCH", "accounts_service", f"/accounts/{ALICE_MAIN}/balance", {"balance": 1}, auth=TELLER
    )
    assert teller_as_admin.status == 403 and teller_as_admin.error_code == "FORBIDDEN"


# --- customer service (ORIGINAL_API.md section 3) ------------------------------------------------------------


async def test_customer_routes(api: Api) -> None:
    profile = await api.call("GET", "customer_service", f"/customers/{ALICE}", auth=ALICE_TOKEN)
    assert profile.status == 200
    for field in ("name", "customer_id", "address", "created_at"):
        assert profile.data[field], field
    assert profile.data["contact_info"]["email"] and "phone" in profile.data["contact_info"]
    assert (await api.call("GET", "customer_service", f"/customers/{BOB}", auth=ALICE_TOKEN)).status == 403
    # bankingClient.login() reads GET /customers/<jwt customer_id> and ignores errors for staff.
    staff_self = await api.call("GET", "customer_service", "/customers/admin-001", auth=ADMIN)
    assert staff_self.status == 400 and staff_self.body["success"] is False

    email = f"contract-{uuid.uuid4().hex[:8]}@example.com"
    created = await api.call(
        "POST",
        "customer_service",
        "/customers",
        {
            "name": "Dora Contract",
            "address": "1 Test Street",
            "contact_info": {"email": email, "phone": "+41 44 000 00 00"},
        },
        auth=TELLER,
    )
    assert created.status == 201, created.body
    assert created.data["customer_id"] and created.data["name"] == "Dora Contract"
    assert created.data["contact_info"]["email"] == email
    customer_id = created.data["customer_id"]

    listed = await api.call("GET", "customer_service", "/customers?limit=50&offset=0", auth=ADMIN)
    assert listed.status == 200 and isinstance(listed.data["customers"], list)
    assert listed.data["pagination"] == {"limit": 50, "offset": 0, "count": len(listed.data["customers"])}
    found = await api.call("GET", "customer_service", f"/customers/search/email?email={email}", auth=TELLER)
    assert found.status == 200 and found.data["customer_id"] == customer_id
    exists = await api.call("GET", "customer_service", f"/customers/{customer_id}/exists", auth=TELLER)
    assert exists.status == 200 and exists.data == {"customer_id": customer_id, "exists": True}
    changed = await api.call(
        "PATCH", "customer_service", f"/customers/{customer_id}", {"address": "2 Test Street"}, auth=TELLER
    )
    assert changed.status == 200 and changed.data["address"] == "2 Test Street"
    assert (await api.call("GET", "customer_service", "/customers", auth=ALICE_TOKEN)).status == 403
    deleted = await api.call("DELETE", "customer_service", f"/customers/{customer_id}", auth=ADMIN)
    assert deleted.status == 200 and deleted.body["success"] is True  # the original said 404 here ([BUG] 11)


# --- accounts service (section 4.1) ---------------------------------------------------------------------------


async def test_account_routes(api: Api) -> None:
    mine = await api.call("GET", "accounts_service", f"/accounts/{ALICE_MAIN}", auth=ALICE_TOKEN)
    assert mine.status == 200
    assert is_money(mine.data["balance"]) and "pending_change" in mine.data and "transaction_lock" in mine.data
    assert (await api.call("GET", "accounts_service", f"/accounts/{BOB_MAIN}", auth=ALICE_TOKEN)).status == 403

    listed = await api.call("GET", "accounts_service", f"/accounts/customer/{ALICE}", auth=ALICE_TOKEN)
    assert listed.status == 200 and isinstance(listed.data, list) and listed.data  # a bare array
    for account in listed.data:
        assert account["account_id"] and is_money(account["balance"])
        assert "pending_change" in account and "transaction_lock" in account
    assert (await api.call("GET", "accounts_service", f"/accounts/customer/{BOB}", auth=ALICE_TOKEN)).status == 403

    opened = await api.call(
        "POST", "accounts_service", "/accounts", {"customer_id": str(ALICE), "initial_balance": 250}, auth=TELLER
    )
    assert opened.status == 201, opened.body
    assert opened.data["account_id"] and opened.data["customer_id"] == str(ALICE) and opened.data["balance"] == 250

    effective = await api.call(
        "GET", "accounts_service", f"/accounts/{opened.data['account_id']}/effective-balance", auth=ALICE_TOKEN
    )
    assert effective.status == 200
    assert effective.data["current_balance"] == effective.data["effective_balance"] == 250
    assert effective.data["is_locked"] is False and "transaction_id" not in effective.data
    assert effective.data["pending_change"] is None


# --- transactions service (section 5) -------------------------------------------------------------------------


async def test_a_transfer_answers_the_original_fields(api: Api) -> None:
    source = await api.open_account(ALICE, Decimal("100"))
    destination = await api.open_account(BOB, Decimal("0"))
    paid = await post_transfer(
        api,
        {"source_account_id": str(source), "destination_account_id": str(destination), "amount": Decimal("25.5")},
        auth=ALICE_TOKEN,
    )  # a JSON number, as JS sends it
    assert paid.status == 200, paid.body
    assert paid.body["success"] is True and isinstance(paid.body["message"], str)
    data = paid.data
    assert data["transaction_id"] and data["status"] == "committed"
    assert (data["source_account_id"], data["destination_account_id"]) == (str(source), str(destination))
    assert is_money(data["amount"]) and data["amount"] == Decimal("25.5")
    assert (data["retry_attempt"], data["total_attempts"]) == (1, 1)

    overdraft = await post_transfer(
        api,
        {"source_account_id": str(source), "destination_account_id": str(destination), "amount": 10_000},
        auth=ALICE_TOKEN,
    )
    assert overdraft.status == 409 and overdraft.body["success"] is False
    assert overdraft.body["error"]["code"] == "INSUFFICIENT_FUNDS" and overdraft.body["error"]["message"]
    assert overdraft.data["status"] == "aborted" and overdraft.data["transaction_id"]
    assert (overdraft.data["retry_attempt"], overdraft.data["total_attempts"]) == (1, 1)
    assert isinstance(overdraft.body["message"], str)
    assert overdraft.body["details"] == {"reason": "insufficient_funds"}  # bankingClient prints it


async def test_a_customer_still_cannot_move_another_customers_money(api: Api) -> None:
    """test-concurrent-operations.js sends Bob -> Carol with Alice's token: we answer 403 on purpose ([BUG] 1)."""
    bob_before = await api.balance(BOB_MAIN)
    stolen = await post_transfer(
        api,
        {"source_account_id": str(BOB_MAIN), "destination_account_id": str(CAROL_MAIN), "amount": 1},
        auth=ALICE_TOKEN,
    )
    assert stolen.status == 403 and stolen.error_code == "FORBIDDEN"
    assert await api.balance(BOB_MAIN) == bob_before


async def test_transfer_reads(api: Api) -> None:
    source = await api.open_account(ALICE, Decimal("100"))
    destination = await api.open_account(BOB, Decimal("0"))
    paid = await post_transfer(
        api,
        {"source_account_id": str(source), "destination_account_id": str(destination), "amount": 10},
        auth=ALICE_TOKEN,
    )
    transaction_id = paid.data["transaction_id"]

    status = await api.call("GET", "transactions_service", f"/transfers/status/{transaction_id}", auth=ALICE_TOKEN)
    assert status.status == 200
    for field in (
        "transaction_id",
        "source_account_id",
        "destination_account_id",
        "status",
        "created_at",
        "updated_at",
    ):
        assert status.data[field], field
    assert is_money(status.data["amount"])

    detail = await api.call("GET", "transactions_service", f"/transactions/{transaction_id}", auth=ALICE_TOKEN)
    assert detail.status == 200
    assert (detail.data["source_account_id"], detail.data["destination_account_id"]) == (str(source), str(destination))
    assert is_money(detail.data["amount"]) and detail.data["status"] == "committed"
    assert is_timestamp(detail.data["created_at"]) and is_timestamp(detail.data["updated_at"])

    history = await api.call("GET", "transactions_service", f"/transfers/history/{source}?limit=50", auth=ALICE_TOKEN)
    assert history.status == 200
    assert history.data["account_id"] == str(source)
    assert history.data["pagination"] == {"limit": 50, "offset": 0, "count": 1}
    [row] = history.data["transactions"]
    assert (row["transaction_id"], row["source_account_id"], row["status"]) == (
        transaction_id,
        str(source),
        "committed",
    )
    assert is_money(row["amount"]) and is_timestamp(row["created_at"])

    by_account = await api.call("GET", "transactions_service", f"/transactions/account/{destination}", auth=TELLER)
    assert by_account.status == 200
    assert (by_account.data["account_id"], by_account.data["count"]) == (str(destination), 1)
    assert [row["transaction_id"] for row in by_account.data["transactions"]] == [transaction_id]
    # Reads of another customer's account stay refused ([BUG] 2 not copied).
    assert (
        await api.call("GET", "transactions_service", f"/transfers/history/{BOB_MAIN}", auth=ALICE_TOKEN)
    ).status == 403


async def test_staff_listings_and_monitoring(api: Api, system: LocalSystem) -> None:
    committed = await api.call("GET", "transactions_service", "/transactions/status/committed?limit=50", auth=TELLER)
    assert committed.status == 200 and committed.data["status"] == "committed"
    assert committed.data["count"] == len(committed.data["transactions"]) >= 1
    assert {row["status"] for row in committed.data["transactions"]} == {"committed"}
    assert (await api.call("GET", "transactions_service", "/transactions/status/sideways", auth=TELLER)).status == 400
    assert (
        await api.call("GET", "transactions_service", "/transactions/status/committed", auth=ALICE_TOKEN)
    ).status == 403

    stats = await api.call("GET", "transactions_service", "/transactions/monitoring/stats", auth=ADMIN)
    assert stats.status == 200 and isinstance(stats.data["total"], int)
    assert set(stats.data["by_status"]) == {"pending", "committed", "aborted"}
    assert all(isinstance(count, int) for count in stats.data["by_status"].values())
    assert stats.data["success_rate"].endswith("%")
    assert (await api.call("GET", "transactions_service", "/transactions/monitoring/stats", auth=TELLER)).status == 403

    monitoring = await api.call(
        "GET", "transactions_service", "/transactions/monitoring/pending?olderThanMinutes=30", auth=ADMIN
    )
    assert monitoring.status == 200
    assert monitoring.data["count"] == len(monitoring.data["pending_transactions"])
    assert monitoring.data["older_than_minutes"] == 30


async def test_an_undecided_transfer_is_pending_on_the_wire(api: Api, system: LocalSystem) -> None:
    """The log says `preparing`; every answer says the original's `pending`, and `preparing` is an alias."""
    source = await api.open_account(ALICE, Decimal("1"))
    destination = await api.open_account(BOB, Decimal("0"))
    transaction_id = uuid.uuid4()
    # As if a coordinator had just accepted it; recovery presumes it aborted after PREPARE_DEADLINE_S (10 s).
    await fetch(
        system,
        "transactions_service",
        """
        INSERT INTO transactions (transaction_id, source_account_id, destination_account_id, amount, status,
                                  request_fingerprint, requested_by)
        VALUES ($1, $2, $3, 1, 'preparing', 'contract-test', 'contract-test')""",
        transaction_id,
        source,
        destination,
    )
    try:
        status = await api.call("GET", "transactions_service", f"/transfers/status/{transaction_id}", auth=ADMIN)
        assert status.status == 200 and status.data["status"] == "pending"
        for name in ("pending", "preparing"):
            listed = await api.call("GET", "transactions_service", f"/transactions/status/{name}?limit=500", auth=ADMIN)
            assert listed.status == 200 and listed.data["status"] == "pending"
            assert str(transaction_id) in {row["transaction_id"] for row in listed.data["transactions"]}
            assert {row["status"] for row in listed.data["transactions"]} == {"pending"}
        monitoring = await api.call(
            "GET", "transactions_service", "/transactions/monitoring/pending?olderThanMinutes=0", auth=ADMIN
        )
        assert str(transaction_id) in {row["transaction_id"] for row in monitoring.data["pending_transactions"]}
        assert isinstance(monitoring.data["warning"], str)
        outcome = await api.call("GET", "transactions_service", f"/transactions/{transaction_id}/outcome", auth=ADMIN)
        assert outcome.data["status"] == "pending"
    finally:  # decided and finished at once, so no other test of this system sees it unfinished
        await fetch(
            system,
            "transactions_service",
            """
            UPDATE transactions SET status = 'aborted', reason = 'prepare_timeout', decided_at = now(),
                                    completed_at = now(), updated_at = now()
            WHERE transaction_id = $1 AND status = 'preparing'""",
            transaction_id,
        )


@pytest.mark.parametrize(
    "path", ["/transfers/status/nope", "/transactions/nope", "/transfers/history/nope", "/transactions/account/nope"]
)
async def test_malformed_ids_stay_400_not_500(api: Api, path: str) -> None:
    answer = await api.call("GET", "transactions_service", path, auth=ADMIN)
    assert answer.status == 400 and answer.error_code == "VALIDATION_ERROR"


async def test_what_we_refuse_on_purpose(api: Api, system: LocalSystem) -> None:
    """The participant protocol is the coordinator's alone, and a decision is never relabelled ([BUG] 14)."""
    prepare = await api.call(
        "POST",
        "accounts_service",
        "/2pc/prepare",
        {"transaction_id": str(uuid.uuid4()), "account_id": str(ALICE_MAIN), "amount": 1, "operation": "debit"},
        auth=ADMIN,
    )
    assert prepare.status == 403 and prepare.error_code == "FORBIDDEN"
    lock = await api.call("GET", "accounts_service", f"/2pc/status/{ALICE_MAIN}", auth=ADMIN)
    assert lock.status == 200 and lock.data["account_id"] == str(ALICE_MAIN)
    committed = await api.call("GET", "transactions_service", "/transactions/status/committed?limit=1", auth=ADMIN)
    [transfer] = committed.data["transactions"]
    relabel = await api.call(
        "PATCH",
        "transactions_service",
        f"/transactions/{transfer['transaction_id']}/status",
        {"status": "aborted"},
        auth=ADMIN,
    )
    assert relabel.status == 404 and relabel.body["success"] is False
    again = await api.call("GET", "transactions_service", f"/transfers/status/{transfer['transaction_id']}", auth=ADMIN)
    assert again.data["status"] == "committed"
    for service, path in (("accounts_service", "/2pc/health"), ("transactions_service", "/transfers/health")):
        assert (await api.call("GET", service, path)).status == 404  # not served: /health is


# --- a client-named transfer: the body transaction_id ----------------------------------------------------------


async def test_a_repeated_transaction_id_answers_the_same_transfer_and_pays_once(api: Api, system: LocalSystem) -> None:
    source = await api.open_account(ALICE, Decimal("100"))
    destination = await api.open_account(BOB, Decimal("0"))
    transaction_id = str(uuid.uuid4())
    body = named_transfer(source, destination, 40, transaction_id)

    first = await post_transfer(api, body, auth=ALICE_TOKEN)
    again = await post_transfer(api, body, auth=ALICE_TOKEN)

    assert first.status == again.status == 200, (first.body, again.body)
    assert first.data["transaction_id"] == again.data["transaction_id"] == transaction_id
    assert await api.balance(source) == 60 and await api.balance(destination) == 40
    assert await transfers_named(system, transaction_id) == 1

    other_body = await post_transfer(api, named_transfer(source, destination, 41, transaction_id), auth=ALICE_TOKEN)
    assert other_body.status == 422 and other_body.error_code == "IDEMPOTENCY_KEY_REUSED"
    other_caller = await post_transfer(api, body, auth=TELLER)
    assert other_caller.status == 422 and other_caller.error_code == "IDEMPOTENCY_KEY_REUSED"
    assert await api.balance(source) == 60 and await api.balance(destination) == 40


async def test_a_repeated_aborted_transaction_id_answers_the_same_abort(api: Api, system: LocalSystem) -> None:
    source = await api.open_account(ALICE, Decimal("5"))
    destination = await api.open_account(BOB, Decimal("0"))
    body = named_transfer(source, destination, 50, str(uuid.uuid4()))
    first, again = await post_transfer(api, body), await post_transfer(api, body)
    assert first.status == again.status == 409 and first.error_code == again.error_code == "INSUFFICIENT_FUNDS"
    assert first.data["transaction_id"] == again.data["transaction_id"] == body["transaction_id"]
    assert await api.balance(source) == 5


async def test_a_retry_under_the_id_the_first_answer_gave_is_that_transfer(api: Api, system: LocalSystem) -> None:
    """The original's clients retry with the transaction_id its first answer named."""
    source = await api.open_account(ALICE, Decimal("100"))
    destination = await api.open_account(BOB, Decimal("0"))
    body = {"source_account_id": str(source), "destination_account_id": str(destination), "amount": 15}
    first = await post_transfer(api, body, auth=ALICE_TOKEN)
    retry = await post_transfer(api, {**body, "transaction_id": first.data["transaction_id"]}, auth=ALICE_TOKEN)
    assert first.status == retry.status == 200
    assert retry.data["transaction_id"] == first.data["transaction_id"]
    assert await api.balance(source) == 85


@pytest.mark.parametrize("bad", ["not-a-uuid", "", 42, ["x"], {"id": 1}, "550e8400-e29b-41d4-a716-44665544000"])
async def test_a_transaction_id_that_is_not_a_uuid_is_400_and_writes_nothing(
    api: Api, system: LocalSystem, bad: Any
) -> None:
    source = await api.open_account(ALICE, Decimal("100"))
    destination = await api.open_account(BOB, Decimal("0"))
    before = await transfer_count(system)
    answer = await post_transfer(api, named_transfer(source, destination, 10, bad))
    assert answer.status == 400 and answer.error_code == "VALIDATION_ERROR"
    assert await transfer_count(system) == before
    assert await api.balance(source) == 100


async def test_a_transaction_id_with_an_idempotency_key(api: Api, system: LocalSystem) -> None:
    source = await api.open_account(ALICE, Decimal("100"))
    destination = await api.open_account(BOB, Decimal("0"))
    key, transaction_id = f"contract-{uuid.uuid4()}", str(uuid.uuid4())
    body = named_transfer(source, destination, 10, transaction_id)

    first = await post_transfer(api, body, key=key)
    again = await post_transfer(api, body, key=key)
    assert first.status == again.status == 200
    assert first.data["transaction_id"] == again.data["transaction_id"] == transaction_id
    # The same key naming another transfer id, or the same id under another key's body, is a 422.
    other_id = await post_transfer(api, named_transfer(source, destination, 10, str(uuid.uuid4())), key=key)
    assert other_id.status == 422 and other_id.error_code == "IDEMPOTENCY_KEY_REUSED"
    other_key = await post_transfer(
        api, named_transfer(source, destination, 11, transaction_id), key=f"contract-{uuid.uuid4()}"
    )
    assert other_key.status == 422
    # The same id under a new key but the same body is that one transfer again.
    new_key = await post_transfer(api, body, key=f"contract-{uuid.uuid4()}")
    assert new_key.status == 200 and new_key.data["transaction_id"] == transaction_id
    assert await api.balance(source) == 90 and await transfers_named(system, transaction_id) == 1


@pytest.fixture(scope="module")
def second_coordinator(system: LocalSystem) -> Iterator[str]:
    """Another transactions_service process on the same coordinator database: a second replica."""
    port = free_port()
    environment = system.service_env("transactions_service", {"PORT": str(port)})
    process = subprocess.Popen(
        [sys.executable, "-m", "transactions_service"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + REPLICA_READY_S
        while True:
            assert process.poll() is None, "the second coordinator exited"
            try:
                with urllib.request.urlopen(url + "/health/ping", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the second coordinator never answered"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_concurrent_posts_with_one_transaction_id_debit_once(
    api: Api, system: LocalSystem, second_coordinator: str
) -> None:
    """8 concurrent POSTs with one body transaction_id, over two coordinator replicas: one transfer, one debit."""
    source = await api.open_account(ALICE, Decimal("100"))
    destination = await api.open_account(BOB, Decimal("0"))
    transaction_id = str(uuid.uuid4())
    body = named_transfer(source, destination, 30, transaction_id)
    replicas = [None, second_coordinator]

    answers = await asyncio.gather(
        *(
            post_transfer(api, body, auth=ALICE_TOKEN, base_url=replicas[index % 2])
            for index in range(CONCURRENT_REPEATS)
        )
    )

    assert [answer.status for answer in answers] == [200] * CONCURRENT_REPEATS, [a.body for a in answers]
    decided = {
        (
            a.data["transaction_id"],
            a.data["status"],
            a.data["amount"],
            a.data["source_account_id"],
            a.data["destination_account_id"],
            a.data["retry_attempt"],
            a.data["total_attempts"],
        )
        for a in answers
    }
    assert decided == {(transaction_id, "committed", 30, str(source), str(destination), 1, 1)}
    assert await api.balance(source) == 70 and await api.balance(destination) == 30
    assert await transfers_named(system, transaction_id) == 1
    rows = await fetch(
        system, "transactions_service", "SELECT count(*) AS n FROM transactions WHERE source_account_id = $1", source
    )
    assert rows[0]["n"] == 1
    legs = await fetch(
        system,
        "accounts_service",
        "SELECT account_id, change FROM participant_log "
        "WHERE transaction_id = $1 AND state = 'committed' ORDER BY change",
        uuid.UUID(transaction_id),
    )
    assert [(row["account_id"], row["change"]) for row in legs] == [(source, -30), (destination, 30)]
