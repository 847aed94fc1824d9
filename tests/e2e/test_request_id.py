"""One client request id joins a session's lines across all three services' logs."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

from tests.e2e.conftest import ALICE_MAIN, BOB_MAIN, Api, until_logged

LOG_FILES = {
    "customer_service": "customers.log",
    "accounts_service": "accounts.log",
    "transactions_service": "transactions.log",
}


def lines_with(path, request_id: str) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line for line in lines if line.get("request_id") == request_id]


async def test_the_request_id_is_forwarded_to_the_participant_and_logged_everywhere(api: Api) -> None:
    request_id = f"test-{uuid.uuid4().hex}"
    headers = {"X-Request-ID": request_id}
    login = await api.call(
        "POST", "customer_service", "/auth/login", {"username": "alice", "password": "alice123"}, headers=headers
    )
    assert login.status == 200, login.body
    answer = await api.call(
        "POST",
        "transactions_service",
        "/transfers",
        {"source_account_id": str(ALICE_MAIN), "destination_account_id": str(BOB_MAIN), "amount": Decimal("1.25")},
        auth=login.data["token"],
        headers=headers,
    )
    assert answer.status == 200, answer.body
    transaction_id = answer.data["transaction_id"]

    log_dir = api.system.log_dir

    def lines(service: str) -> list[dict]:
        return lines_with(log_dir / LOG_FILES[service], request_id)

    def voted() -> bool:
        return "participant_voted" in {line["event"] for line in lines("accounts_service")}

    await until_logged(lambda: bool(lines("customer_service") and lines("transactions_service")) and voted())
    customer, coordinator, participant = (
        lines(service) for service in ("customer_service", "transactions_service", "accounts_service")
    )
    assert [line["event"] for line in customer] == ["login_succeeded"]
    assert {line.get("transaction_id") for line in coordinator} == {transaction_id}
    assert "participant_voted" in {line["event"] for line in participant}
    # A batch message's own lines (batching on) name no transfer; every line that names one names ours.
    assert {line.get("transaction_id") for line in participant} - {None} == {transaction_id}


async def test_an_unusable_request_id_is_replaced(api: Api) -> None:
    answer_headers = {}
    async with api.session.get(
        api.system.url("accounts_service") + "/health", headers={"X-Request-ID": "x" * 500}
    ) as response:
        answer_headers = dict(response.headers)
    assert len(answer_headers["X-Request-ID"]) == 32
