"""One client request id joins a session's lines across all three services' logs."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal

from tests.e2e.conftest import ALICE_MAIN, BOB_MAIN, Api

# Lines reach the files from a writer thread (shared/log.py): within this, or the test fails.
LOG_WRITTEN_WITHIN_S = 2.0
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
    deadline = time.monotonic() + LOG_WRITTEN_WITHIN_S
    while True:  # each service's writer thread writes its lines a moment after the loop logged them
        customer = lines_with(log_dir / LOG_FILES["customer_service"], request_id)
        coordinator = lines_with(log_dir / LOG_FILES["transactions_service"], request_id)
        participant = lines_with(log_dir / LOG_FILES["accounts_service"], request_id)
        written = customer and coordinator and "participant_voted" in {line["event"] for line in participant}
        if written or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
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
