"""The participant's batch routes on the running accounts service: a batch prepared, decided per transfer, and
logged with one `participant_voted` line per transfer and one line per decided batch."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.conftest import coordinator_token
from tests.e2e.conftest import ALICE, Api, until_logged

ACCOUNTS_LOG = "accounts.log"


def transfer(transaction_id: uuid.UUID, source: uuid.UUID, destination: uuid.UUID, amount: str) -> dict[str, Any]:
    return {
        "transaction_id": str(transaction_id),
        "changes": [
            {"account_id": str(source), "change": f"-{amount}"},
            {"account_id": str(destination), "change": amount},
        ],
    }


def events_of(log_dir: Path, request_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in (log_dir / ACCOUNTS_LOG).read_text().splitlines() if line.strip()]
    return [line for line in lines if line.get("request_id") == request_id]


async def batch_call(api: Api, path: str, transfers: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    answer = await api.call(
        "POST",
        "accounts_service",
        path,
        {"transfers": transfers},
        auth=coordinator_token(),
        headers={"X-Request-ID": request_id},
    )
    assert answer.status == 200, answer.body
    return answer.data


async def test_a_batch_is_voted_decided_and_logged_per_transfer(api: Api) -> None:
    a, b, c, d = [await api.open_account(ALICE, Decimal(balance)) for balance in (100, 0, 5, 0)]
    good, poor = uuid.uuid4(), uuid.uuid4()
    prepare_id, commit_id, abort_id = (f"test-{uuid.uuid4().hex}" for _ in range(3))

    votes = await batch_call(
        api, "/2pc/prepare-batch", [transfer(good, a, b, "10"), transfer(poor, c, d, "6")], prepare_id
    )
    assert [(vote["vote"], vote["reason"]) for vote in votes["votes"]] == [("yes", None), ("no", "insufficient_funds")]
    committed = await batch_call(api, "/2pc/commit-batch", [{"transaction_id": str(good)}], commit_id)
    assert committed["results"] == [{"transaction_id": str(good), "acknowledged": True, "error": None}]
    aborted = await batch_call(api, "/2pc/abort-batch", [transfer(poor, c, d, "6")], abort_id)
    assert [result["acknowledged"] for result in aborted["results"]] == [True]

    assert [await api.balance(account) for account in (a, b, c, d)] == [90, 10, 5, 0]
    log_dir = api.system.log_dir
    await until_logged(lambda: all(events_of(log_dir, request_id) for request_id in (prepare_id, commit_id, abort_id)))
    voted = [line for line in events_of(api.system.log_dir, prepare_id) if line["event"] == "participant_voted"]
    assert sorted(line["transaction_id"] for line in voted) == sorted([str(good), str(poor)]), "one line per transfer"
    for request_id, event in ((commit_id, "participant_batch_commit"), (abort_id, "participant_batch_abort")):
        infos = [line for line in events_of(api.system.log_dir, request_id) if line.get("level") == "info"]
        assert [line["event"] for line in infos] == [event], "one info line per decided batch"
