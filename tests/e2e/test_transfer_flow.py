"""The transfer over real HTTP between real service processes: the issue's acceptance scenario and its edges."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests.conftest import token
from tests.e2e.conftest import ALICE, ALICE_MAIN, BOB, BOB_MAIN, Api, fetch

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def test_alice_pays_bob_then_overdraws(api: Api) -> None:
    alice_token = await api.login("alice", "alice123")
    accounts = await api.call("GET", "accounts_service", f"/accounts/customer/{ALICE}", auth=alice_token)
    assert accounts.status == 200
    assert {row["account_id"] for row in accounts.data} >= {str(ALICE_MAIN)}
    alice_before, bob_before = await api.balance(ALICE_MAIN), await api.balance(BOB_MAIN)

    paid = await api.transfer(ALICE_MAIN, BOB_MAIN, 100, auth=alice_token)

    assert paid.status == 200, paid.body
    assert paid.data["status"] == "committed"
    assert paid.data["amount"] == Decimal("100")
    assert await api.balance(ALICE_MAIN) == alice_before - 100
    assert await api.balance(BOB_MAIN) == bob_before + 100
    for account_id in (ALICE_MAIN, BOB_MAIN):
        status = await api.call("GET", "accounts_service", f"/2pc/status/{account_id}", auth=token("service"))
        assert status.data["transaction_lock"] is None

    overdraft = await api.transfer(ALICE_MAIN, BOB_MAIN, alice_before * 10, auth=alice_token)

    assert overdraft.status == 409
    assert overdraft.error_code == "INSUFFICIENT_FUNDS"
    assert overdraft.body["error"]["details"]["status"] == "aborted"
    assert await api.balance(ALICE_MAIN) == alice_before - 100
    assert await api.balance(BOB_MAIN) == bob_before + 100


async def test_alice_cannot_move_bobs_money(api: Api) -> None:
    alice_token = await api.login("alice", "alice123")
    bob_before = await api.balance(BOB_MAIN)

    stolen = await api.transfer(BOB_MAIN, ALICE_MAIN, 10, auth=alice_token)

    assert stolen.status == 403
    assert stolen.error_code == "FORBIDDEN"
    assert await api.balance(BOB_MAIN) == bob_before


async def test_same_idempotency_key_pays_once(api: Api) -> None:
    source = await api.open_account(ALICE, Decimal("300"))
    destination = await api.open_account(BOB, Decimal("0"))
    key = f"test-{uuid.uuid4()}"

    first = await api.transfer(source, destination, "120.5", key=key)
    second = await api.transfer(source, destination, "120.5", key=key)
    other_body = await api.transfer(source, destination, "1", key=key)

    assert first.status == second.status == 200
    assert second.data["transaction_id"] == first.data["transaction_id"]
    assert await api.balance(source) == Decimal("179.5")
    assert await api.balance(destination) == Decimal("120.5")
    assert other_body.status == 422
    assert other_body.error_code == "IDEMPOTENCY_KEY_REUSED"


async def test_replayed_abort_answers_the_same_abort(api: Api) -> None:
    source = await api.open_account(ALICE, Decimal("5"))
    destination = await api.open_account(BOB, Decimal("0"))
    key = f"test-{uuid.uuid4()}"

    first = await api.transfer(source, destination, 50, key=key)
    second = await api.transfer(source, destination, 50, key=key)

    assert first.status == second.status == 409
    assert first.error_code == second.error_code == "INSUFFICIENT_FUNDS"
    assert first.body["error"]["details"]["transaction_id"] == second.body["error"]["details"]["transaction_id"]


BAD_AMOUNTS = [-5, 0, "0.00001", "abc", None, True, [], {}, "1e400", "NaN", "Infinity", "2000000000"]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=[repr(amount) for amount in BAD_AMOUNTS])
async def test_bad_amounts_are_refused_and_change_nothing(api: Api, amount) -> None:
    source = await api.open_account(ALICE, Decimal("100"))
    destination = await api.open_account(BOB, Decimal("0"))

    answer = await api.transfer(source, destination, amount)

    assert answer.status == 400, answer.body
    assert answer.body["success"] is False and answer.error_code == "VALIDATION_ERROR"
    assert await api.balance(source) == Decimal("100")
    rows = await fetch(
        api.system, "transactions_service", "SELECT 1 FROM transactions WHERE source_account_id = $1", source
    )
    assert rows == []


BAD_BODIES = [
    ({"destination_account_id": str(BOB_MAIN), "amount": 1}, 400),
    ({"source_account_id": str(ALICE_MAIN), "amount": 1}, 400),
    ({"source_account_id": str(ALICE_MAIN), "destination_account_id": str(BOB_MAIN)}, 400),
    ({"source_account_id": "not-a-uuid", "destination_account_id": str(BOB_MAIN), "amount": 1}, 400),
    ({"source_account_id": 42, "destination_account_id": str(BOB_MAIN), "amount": 1}, 400),
    ({"source_account_id": str(ALICE_MAIN), "destination_account_id": str(ALICE_MAIN), "amount": 1}, 400),
]


@pytest.mark.parametrize("body,status", BAD_BODIES)
async def test_bad_transfer_bodies(api: Api, body, status) -> None:
    before = await api.balance(ALICE_MAIN)
    answer = await api.call("POST", "transactions_service", "/transfers", body, auth=token("teller"))
    assert answer.status == status, answer.body
    assert answer.error_code == "VALIDATION_ERROR"
    assert await api.balance(ALICE_MAIN) == before


@pytest.mark.parametrize("raw", [b"{", b"[]", b'{"amount": NaN}', b'{"a": 1, "a": 2}', b"", b"null"])
async def test_malformed_json_is_a_400(api: Api, raw: bytes) -> None:
    answer = await api.call("POST", "transactions_service", "/transfers", raw=raw, auth=token("teller"))
    assert answer.status == 400
    assert answer.error_code == "VALIDATION_ERROR"


async def test_unknown_destination_aborts_with_not_found(api: Api) -> None:
    source = await api.open_account(ALICE, Decimal("100"))
    answer = await api.transfer(source, uuid.uuid4(), 10)
    assert answer.status == 409
    assert answer.error_code == "NOT_FOUND"
    assert await api.balance(source) == Decimal("100")
    status = await api.call("GET", "accounts_service", f"/2pc/status/{source}", auth=token("service"))
    assert status.data["transaction_lock"] is None


async def test_customer_debiting_unknown_account_is_not_found(api: Api) -> None:
    alice_token = await api.login("alice", "alice123")
    answer = await api.transfer(uuid.uuid4(), ALICE_MAIN, 10, auth=alice_token)
    assert answer.status == 404
    assert answer.error_code == "NOT_FOUND"


@pytest.mark.parametrize("auth", [None, "garbage", token("teller", ttl_s=-10)])
async def test_transfer_needs_a_valid_token(api: Api, auth) -> None:
    answer = await api.call(
        "POST",
        "transactions_service",
        "/transfers",
        {"source_account_id": str(ALICE_MAIN), "destination_account_id": str(BOB_MAIN), "amount": 1},
        auth=auth,
    )
    assert answer.status == 401
    assert answer.error_code == "UNAUTHORIZED"


async def test_service_token_cannot_transfer(api: Api) -> None:
    answer = await api.transfer(ALICE_MAIN, BOB_MAIN, 1, auth=token("service"))
    assert answer.status == 403


async def test_transfer_reads_and_the_protocol_timeline(api: Api) -> None:
    source = await api.open_account(ALICE, Decimal("50"))
    destination = await api.open_account(BOB, Decimal("0"))
    paid = await api.transfer(source, destination, 20)
    transaction_id = paid.data["transaction_id"]

    status = await api.call("GET", "transactions_service", f"/transfers/status/{transaction_id}", auth=token("teller"))
    detail = await api.call("GET", "transactions_service", f"/transactions/{transaction_id}", auth=token("admin"))
    history = await api.call("GET", "transactions_service", f"/transfers/history/{source}", auth=token("teller"))
    by_account = await api.call(
        "GET", "transactions_service", f"/transactions/account/{destination}", auth=token("teller")
    )
    outcome = await api.call(
        "GET", "transactions_service", f"/transactions/{transaction_id}/outcome", auth=token("service")
    )

    assert status.data["status"] == "committed" and status.data["completed"] is True
    assert [event["event_type"] for event in detail.data["events"]] == [
        "accepted",
        "prepare_sent",
        "vote",
        "decision",
        "decision_sent",
        "acknowledged",
        "completed",
    ]
    assert [row["transaction_id"] for row in history.data["transactions"]] == [transaction_id]
    assert history.data["pagination"] == {"limit": 50, "offset": 0, "count": 1}
    assert [row["transaction_id"] for row in by_account.data["transactions"]] == [transaction_id]
    assert (by_account.data["account_id"], by_account.data["count"]) == (str(destination), 1)
    assert outcome.data["status"] == "committed"


async def test_customer_reads_only_their_transfers(api: Api) -> None:
    source = await api.open_account(BOB, Decimal("50"))
    destination = await api.open_account(BOB, Decimal("0"))
    paid = await api.transfer(source, destination, 5)
    alice_token = await api.login("alice", "alice123")
    bob_token = await api.login("bob", "bob123")
    path = f"/transfers/status/{paid.data['transaction_id']}"

    assert (await api.call("GET", "transactions_service", path, auth=alice_token)).status == 403
    assert (await api.call("GET", "transactions_service", path, auth=bob_token)).status == 200
    assert (
        await api.call("GET", "transactions_service", f"/transfers/history/{source}", auth=alice_token)
    ).status == 403


async def test_staff_listings_and_monitoring(api: Api) -> None:
    committed = await api.call(
        "GET", "transactions_service", "/transactions/status/committed?limit=5", auth=token("teller")
    )
    bad_status = await api.call("GET", "transactions_service", "/transactions/status/sideways", auth=token("teller"))
    customer = await api.call(
        "GET", "transactions_service", "/transactions/status/committed", auth=token("customer", ALICE)
    )
    pending = await api.call(
        "GET", "transactions_service", "/transactions/monitoring/pending?olderThanMinutes=0", auth=token("admin")
    )
    stats = await api.call("GET", "transactions_service", "/transactions/monitoring/stats", auth=token("admin"))
    teller_stats = await api.call("GET", "transactions_service", "/transactions/monitoring/stats", auth=token("teller"))
    bad_limit = await api.call(
        "GET", "transactions_service", "/transactions/status/committed?limit=0", auth=token("teller")
    )

    assert committed.status == 200 and len(committed.data["transactions"]) <= 5
    assert committed.data["status"] == "committed"
    assert bad_status.status == 400 and customer.status == 403 and teller_stats.status == 403
    assert pending.status == 200 and pending.data["pending_transactions"] == [] and pending.data["count"] == 0
    assert "warning" not in pending.data  # present only when something is pending
    assert stats.status == 200 and stats.data["by_status"]["committed"] >= 1
    assert stats.data["by_status_detail"]["committed"]["transfers"] == stats.data["by_status"]["committed"]
    assert bad_limit.status == 400


@pytest.mark.parametrize(
    "path",
    [
        "/transfers/status/nope",
        "/transactions/nope",
        "/transfers/history/nope",
        "/transactions/account/nope",
        "/transactions/nope/outcome",
    ],
)
async def test_malformed_ids_are_400_not_500(api: Api, path: str) -> None:
    answer = await api.call("GET", "transactions_service", path, auth=token("admin"))
    assert answer.status == 400
    assert answer.error_code == "VALIDATION_ERROR"


@pytest.mark.parametrize("service", ["customer_service", "accounts_service", "transactions_service"])
async def test_every_service_reports_health(api: Api, service: str) -> None:
    for path in ("/health", "/health/ping", "/ready"):
        answer = await api.call("GET", service, path)
        assert answer.status == 200, (service, path, answer.body)


async def test_the_events_a_customer_reads_name_no_login_and_no_host(api: Api) -> None:
    """Found: the receiver read the sender's login name (requested_by) and internal hosts in the events."""
    alice_token = await api.login("alice", "alice123")
    transfer = await api.transfer(ALICE_MAIN, BOB_MAIN, "0.01", auth=alice_token)
    assert transfer.status == 200, transfer.body
    path = f"/transactions/{transfer.data['transaction_id']}"
    seen_by_bob = await api.call("GET", "transactions_service", path, auth=token("customer", BOB))
    assert seen_by_bob.status == 200, seen_by_bob.body
    text = str(seen_by_bob.data["events"])
    assert "alice" not in text and "requested_by" not in text
    assert "127.0.0.1" not in text and "localhost" not in text
    seen_by_staff = await api.call("GET", "transactions_service", path, auth=token("admin"))
    assert any(event["details"].get("requested_by") == "alice" for event in seen_by_staff.data["events"])
