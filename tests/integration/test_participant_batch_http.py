"""The participant's batch routes over HTTP (/2pc/prepare-batch, /2pc/commit-batch, /2pc/abort-batch) against a
real PostgreSQL database: the wire contract (accounts_service/api_schema.py), the coordinator-only rule, the bound."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import participant_batch
from accounts_service.app import create_app
from accounts_service.handlers import MAX_CHANGES_PER_PREPARE
from accounts_service.participant import DEFAULT_PREPARE_BUSY_WAIT_S
from accounts_service.participant_batch import PARTICIPANT_BATCH_BODY_MAX_BYTES, PARTICIPANT_BATCH_MAX
from shared import jsonio
from shared.database import create_engine
from shared.errors import ServiceUnavailableError
from shared.params import MAX_BODY_BYTES
from tests.conftest import bearer, coordinator_token, serve
from tests.integration.test_accounts_http import (
    assert_error,
    changes_body,
    data_of,
    open_account,
    service_key_token,
    settings_for,
)
from tests.integration.test_participant import account_states, log_rows

BATCH_PATHS = ["/2pc/prepare-batch", "/2pc/commit-batch", "/2pc/abort-batch"]


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(accounts_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TestClient]:
    log_dir = str(tmp_path_factory.mktemp("accounts-batch-logs"))
    async with serve(create_app(settings_for(accounts_db_url, log_dir))) as test_client:
        yield test_client


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def engine(accounts_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(accounts_db_url, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


def coordinator() -> dict[str, str]:
    return {"Authorization": f"Bearer {coordinator_token()}"}


def transfer_body(transaction_id: UUID, source: UUID, destination: UUID, amount: Any) -> dict[str, Any]:
    return changes_body(transaction_id, (source, f"-{amount}"), (destination, amount))


async def two_accounts(engine: AsyncEngine, balance: int = 100) -> tuple[UUID, UUID]:
    return (await open_account(engine, balance))["account_id"], (await open_account(engine, 0))["account_id"]


async def test_a_batch_travels_prepare_commit_and_abort_with_one_answer_per_transfer(client, engine):
    (a, b), (c, d) = await two_accounts(engine), await two_accounts(engine, 5)
    good, poor = uuid.uuid4(), uuid.uuid4()
    body = {"transfers": [transfer_body(good, a, b, "12.5"), transfer_body(poor, c, d, 10)]}
    data = await data_of(await client.post("/2pc/prepare-batch", json=body, headers=coordinator()))
    assert data == {
        "votes": [
            {"transaction_id": str(good), "vote": "yes", "reason": None},
            {"transaction_id": str(poor), "vote": "no", "reason": "insufficient_funds"},
        ]
    }
    commit = {"transfers": [{"transaction_id": str(good)}, {"transaction_id": str(poor)}]}
    data = await data_of(await client.post("/2pc/commit-batch", json=commit, headers=coordinator()))
    assert data["results"][0] == {"transaction_id": str(good), "acknowledged": True, "error": None}
    refused = data["results"][1]
    assert refused["transaction_id"] == str(poor) and refused["acknowledged"] is False
    assert refused["error"]["code"] == "CONFLICT_ERROR" and isinstance(refused["error"]["message"], str)
    abort = {"transfers": [transfer_body(poor, c, d, 10), transfer_body(good, a, b, "12.5")]}
    data = await data_of(await client.post("/2pc/abort-batch", json=abort, headers=coordinator()))
    assert [(result["acknowledged"], result["error"] and result["error"]["code"]) for result in data["results"]] == [
        (True, None),
        (False, "CONFLICT_ERROR"),  # committed here: it cannot abort
    ]
    states = await account_states(engine, [a, b, c, d])
    assert [states[account]["balance"] for account in (a, b, c, d)] == [87.5, 12.5, 5, 0]


@pytest.mark.parametrize("path", BATCH_PATHS)
@pytest.mark.parametrize(
    "headers",
    [
        lambda: bearer("admin"),
        lambda: bearer("teller"),
        lambda: bearer("customer", uuid.uuid4()),
        lambda: bearer("service"),
        lambda: service_key_token("transactions-service"),
        lambda: {"Authorization": f"Bearer {coordinator_token(subject='customer-service')}"},
    ],
    ids=["admin", "teller", "customer", "service", "service key naming the coordinator", "coordinator key, other"],
)
async def test_only_the_coordinator_drives_the_batch_routes(client, engine, path, headers):
    source, destination = await two_accounts(engine)
    transaction_id = uuid.uuid4()
    body = {"transfers": [transfer_body(transaction_id, source, destination, 10)]}
    await assert_error(await client.post(path, json=body, headers=headers()), 403, "FORBIDDEN")
    await assert_error(await client.post(path, json=body), 401, "UNAUTHORIZED")
    assert await log_rows(engine, transaction_id) == {}


@pytest.mark.parametrize("path", BATCH_PATHS)
async def test_a_batch_over_the_bound_is_refused_and_nothing_is_written(client, engine, path):
    source, destination = await two_accounts(engine)
    ids = [uuid.uuid4() for _ in range(PARTICIPANT_BATCH_MAX + 1)]
    body = {"transfers": [transfer_body(transaction_id, source, destination, 1) for transaction_id in ids]}
    await assert_error(await client.post(path, json=body, headers=coordinator()), 400, "VALIDATION_ERROR")
    assert await log_rows(engine, ids[0]) == {}
    assert (await account_states(engine, [source]))[source]["transaction_lock"] is None


@pytest.mark.parametrize("path", BATCH_PATHS)
async def test_a_transfer_named_twice_in_one_batch_is_refused_and_nothing_is_written(client, engine, path):
    (a, b), (c, d) = await two_accounts(engine), await two_accounts(engine)
    transaction_id = uuid.uuid4()
    body = {"transfers": [transfer_body(transaction_id, a, b, 1), transfer_body(transaction_id, c, d, 1)]}
    await assert_error(await client.post(path, json=body, headers=coordinator()), 400, "VALIDATION_ERROR")
    assert await log_rows(engine, transaction_id) == {}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"transfers": []},
        {"transfers": [{"changes": []}]},
        {"transfers": [{"transaction_id": "not-a-uuid", "account_id": str(uuid.uuid4()), "amount": 1}]},
        {"transfers": [{"transaction_id": str(uuid.uuid4())}]},  # a prepare names its legs
    ],
    ids=["no transfers", "empty", "no id", "bad id", "no legs"],
)
async def test_a_malformed_prepare_batch_is_a_400(client, body):
    await assert_error(
        await client.post("/2pc/prepare-batch", json=body, headers=coordinator()), 400, "VALIDATION_ERROR"
    )


async def test_an_unbalanced_entry_votes_invalid_legs_and_the_others_are_unaffected(client, engine):
    (a, b), (c, d) = await two_accounts(engine), await two_accounts(engine)
    good, unbalanced = uuid.uuid4(), uuid.uuid4()
    body = {"transfers": [changes_body(unbalanced, (c, "-10"), (d, "11")), transfer_body(good, a, b, 10)]}
    data = await data_of(await client.post("/2pc/prepare-batch", json=body, headers=coordinator()))
    assert [(vote["vote"], vote["reason"]) for vote in data["votes"]] == [("no", "invalid_legs"), ("yes", None)]
    assert await log_rows(engine, unbalanced) == {}


async def test_the_largest_batch_the_contract_allows_is_answered(client):
    """PARTICIPANT_BATCH_MAX entries of MAX_CHANGES_PER_PREPARE legs: well over a single route's 64 KiB body."""
    legs = [
        (uuid.uuid4(), "-1234567.8901" if index % 2 else "1234567.8901") for index in range(MAX_CHANGES_PER_PREPARE)
    ]
    body = {"transfers": [changes_body(uuid.uuid4(), *legs) for _ in range(PARTICIPANT_BATCH_MAX)]}
    assert len(jsonio.dumps(body)) > MAX_BODY_BYTES
    data = await data_of(await client.post("/2pc/prepare-batch", json=body, headers=coordinator()))
    assert [vote["reason"] for vote in data["votes"]] == ["account_not_found"] * PARTICIPANT_BATCH_MAX


async def test_a_batch_body_over_its_byte_bound_is_a_413(client):
    padding = "x" * (PARTICIPANT_BATCH_BODY_MAX_BYTES + 1)
    response = await client.post(
        "/2pc/prepare-batch", data=padding, headers={**coordinator(), "Content-Type": "application/json"}
    )
    await assert_error(response, 413, "PAYLOAD_TOO_LARGE")


# --- prepares riding a decision batch ------------------------------------------------------------------------------


async def leg_states(engine: AsyncEngine, transaction_id: UUID) -> dict[UUID, str]:
    return {account_id: row["state"] for account_id, row in (await log_rows(engine, transaction_id)).items()}


async def test_a_prepare_riding_a_commit_takes_the_account_the_commit_releases(client, engine):
    """The next transfer on account a rides the message that commits the one holding a: the participant
    commits first, then prepares, so the rider votes YES where alone it would have waited for the lock."""
    (a, b), c = await two_accounts(engine), (await open_account(engine, 0))["account_id"]
    holding, next_one = uuid.uuid4(), uuid.uuid4()
    prepare = {"transfers": [transfer_body(holding, a, b, 30)]}
    await data_of(await client.post("/2pc/prepare-batch", json=prepare, headers=coordinator()))

    body = {"transfers": [{"transaction_id": str(holding)}], "prepare": [transfer_body(next_one, a, c, 70)]}
    data = await data_of(await client.post("/2pc/commit-batch", json=body, headers=coordinator()))

    assert data["results"] == [{"transaction_id": str(holding), "acknowledged": True, "error": None}]
    assert data["votes"] == [{"transaction_id": str(next_one), "vote": "yes", "reason": None}]
    states = await account_states(engine, [a, b])
    assert states[a]["balance"] == 70 and states[b]["balance"] == 30  # the commit applied
    assert states[a]["transaction_lock"] == next_one  # and the rider holds a, with all that is left
    assert await leg_states(engine, next_one) == {a: "prepared", c: "prepared"}


async def test_a_rider_that_meets_another_lock_is_deferred_at_once_and_nothing_is_written(
    accounts_db_url, engine, tmp_path
):
    """The rider needs account c, which a transfer outside the message holds (another replica's): the
    answer must not wait for c (PREPARE_BUSY_WAIT_S), since every decision of the message waits with it.
    Deferred, it leaves no tombstone: sent again once c is free, it votes YES."""
    settings = settings_for(accounts_db_url, str(tmp_path), prepare_busy_wait_s=DEFAULT_PREPARE_BUSY_WAIT_S)
    async with serve(create_app(settings)) as client:
        await _a_rider_meets_another_lock(client, engine)


async def _a_rider_meets_another_lock(client: TestClient, engine: AsyncEngine) -> None:
    (a, b), (c, d) = await two_accounts(engine), await two_accounts(engine)
    holding, elsewhere, rider = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    prepare = {"transfers": [transfer_body(holding, a, b, 30), transfer_body(elsewhere, c, d, 10)]}
    await data_of(await client.post("/2pc/prepare-batch", json=prepare, headers=coordinator()))

    body = {"transfers": [{"transaction_id": str(holding)}], "prepare": [transfer_body(rider, c, a, 5)]}
    started = time.monotonic()
    data = await data_of(await client.post("/2pc/commit-batch", json=body, headers=coordinator()))
    elapsed_s = time.monotonic() - started

    assert data["results"] == [{"transaction_id": str(holding), "acknowledged": True, "error": None}]
    assert data["votes"] == [{"transaction_id": str(rider), "vote": "deferred", "reason": None}]
    assert elapsed_s < DEFAULT_PREPARE_BUSY_WAIT_S / 2, elapsed_s
    assert await leg_states(engine, rider) == {}
    assert (await account_states(engine, [c]))[c]["transaction_lock"] == elsewhere

    release = {"transfers": [{"transaction_id": str(elsewhere)}]}
    await data_of(await client.post("/2pc/abort-batch", json=release, headers=coordinator()))
    again = {"transfers": [transfer_body(rider, c, a, 5)]}
    data = await data_of(await client.post("/2pc/prepare-batch", json=again, headers=coordinator()))
    assert data["votes"] == [{"transaction_id": str(rider), "vote": "yes", "reason": None}]


async def test_a_decision_batch_with_no_riders_answers_no_votes(client, engine):
    source, destination = await two_accounts(engine)
    transaction_id = uuid.uuid4()
    prepare = {"transfers": [transfer_body(transaction_id, source, destination, 1)]}
    await data_of(await client.post("/2pc/prepare-batch", json=prepare, headers=coordinator()))

    body = {"transfers": [{"transaction_id": str(transaction_id)}], "prepare": []}
    data = await data_of(await client.post("/2pc/abort-batch", json=body, headers=coordinator()))

    assert set(data) == {"results"} and data["results"][0]["acknowledged"] is True


@pytest.mark.parametrize("path", ["/2pc/commit-batch", "/2pc/abort-batch"])
@pytest.mark.parametrize("fault", ["named twice", "malformed rider", "riders over the bound"])
async def test_a_bad_rider_refuses_the_whole_message_and_nothing_is_written(client, engine, path, fault):
    (a, b), (c, d) = await two_accounts(engine), await two_accounts(engine)
    decided, rider = uuid.uuid4(), uuid.uuid4()
    prepare = {"transfers": [transfer_body(decided, a, b, 10)]}
    await data_of(await client.post("/2pc/prepare-batch", json=prepare, headers=coordinator()))
    riders = {
        "named twice": [transfer_body(decided, c, d, 1)],
        "malformed rider": [{"transaction_id": str(rider), "changes": [{"account_id": str(c), "change": "ten"}]}],
        "riders over the bound": [transfer_body(uuid.uuid4(), c, d, 1) for _ in range(PARTICIPANT_BATCH_MAX + 1)],
    }[fault]
    body = {"transfers": [{"transaction_id": str(decided)}], "prepare": riders}

    await assert_error(await client.post(path, json=body, headers=coordinator()), 400, "VALIDATION_ERROR")

    assert await leg_states(engine, decided) == {a: "prepared", b: "prepared"}  # the decision was not applied
    assert await log_rows(engine, rider) == {}
    assert (await account_states(engine, [c]))[c]["transaction_lock"] is None


async def test_when_only_the_riders_meet_an_unavailable_database_the_decisions_are_still_answered(
    client, engine, monkeypatch
):
    (a, b), (c, d) = await two_accounts(engine), await two_accounts(engine)
    decided, rider = uuid.uuid4(), uuid.uuid4()
    prepare = {"transfers": [transfer_body(decided, a, b, 10)]}
    await data_of(await client.post("/2pc/prepare-batch", json=prepare, headers=coordinator()))

    async def unavailable(*_args, **_kwargs):
        raise ServiceUnavailableError("database unavailable")

    monkeypatch.setattr(participant_batch, "prepare_riders", unavailable)
    body = {"transfers": [{"transaction_id": str(decided)}], "prepare": [transfer_body(rider, c, d, 1)]}
    data = await data_of(await client.post("/2pc/commit-batch", json=body, headers=coordinator()))

    assert data == {"results": [{"transaction_id": str(decided), "acknowledged": True, "error": None}]}
    assert await leg_states(engine, decided) == {a: "committed", b: "committed"}
    assert await leg_states(engine, rider) == {}
