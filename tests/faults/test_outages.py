"""Participants down, database connections killed, messages duplicated and reordered: still all-or-nothing."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from decimal import Decimal

import asyncpg
import pytest

from harness.system import LocalSystem
from tests.conftest import coordinator_token, token
from tests.e2e.conftest import ALICE, BOB, Api, fetch
from tests.faults.conftest import restart, settled_report

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

OPENING = Decimal("300")
# The coordinator pauses with both legs prepared; the test acts once it sees both locks, well inside the pause.
STALL_BEFORE_DECISION = "after_all_votes_before_decision=stall:2"  # under PREPARE_DEADLINE_S (3)
PREPARED_WAIT_S = 10.0
POLL_S = 0.02


async def _accounts(api: Api) -> tuple[uuid.UUID, uuid.UUID]:
    return await api.open_account(ALICE, OPENING), await api.open_account(BOB, OPENING)


async def _assert_settled(system: LocalSystem, accounts, outcomes=None) -> None:
    report, elapsed = await settled_report(system, list(accounts), OPENING * 2, outcomes)
    assert report.violations == [], f"after {elapsed:.1f}s: {report.violations}"


async def test_participant_down_during_prepare_aborts_and_locks_nothing(
    fault_api: Api, fault_system: LocalSystem
) -> None:
    source, destination = await _accounts(fault_api)
    await asyncio.to_thread(fault_system.kill, "accounts_service", signal.SIGKILL)

    answer = await fault_api.transfer(source, destination, 10)
    await restart(fault_system, "accounts_service")

    assert answer.status == 409
    assert answer.body["error"]["details"]["status"] == "aborted"
    transaction_id = uuid.UUID(answer.body["error"]["details"]["transaction_id"])
    await _assert_settled(fault_system, (source, destination), {transaction_id: "aborted"})
    assert await fault_api.balance(source) == OPENING


async def test_participant_down_during_complete_is_finished_when_it_returns(
    fault_api: Api, fault_system: LocalSystem
) -> None:
    source, destination = await _accounts(fault_api)
    await restart(fault_system, "transactions_service", {"FAILPOINTS": STALL_BEFORE_DECISION})

    pending = asyncio.create_task(fault_api.transfer(source, destination, 10))
    transaction_id = await _both_legs_prepared(fault_system, source, destination)
    await asyncio.to_thread(fault_system.kill, "accounts_service", signal.SIGKILL)
    assert await _coordinator_status(fault_system, transaction_id) == "preparing", "the kill came before the decision"
    answer = await pending
    await restart(fault_system, "accounts_service")

    assert answer.status == 200, answer.body
    assert answer.data["status"] == "committed" and answer.data["completed"] is False
    await _assert_settled(fault_system, (source, destination), {transaction_id: "committed"})
    assert await fault_api.balance(destination) == OPENING + 10
    await restart(fault_system, "transactions_service")


@pytest.mark.parametrize("service", ["transactions_service", "accounts_service"])
async def test_database_connections_killed_mid_transfer(
    fault_api: Api, fault_system: LocalSystem, service: str
) -> None:
    """Both legs prepared, the decision not yet written, and one service's database connections die.

    The database itself stays up, so nothing is lost: the pools must notice the dead connections and the
    transfer commits, answered 200 committed (a 503 "try again" would be a lie for the participant's
    side, where the decision is stored, and needless for the coordinator's, where it is not yet)."""
    source, destination = await _accounts(fault_api)
    await restart(fault_system, "transactions_service", {"FAILPOINTS": STALL_BEFORE_DECISION})

    pending = asyncio.create_task(fault_api.transfer(source, destination, 10))
    transaction_id = await _both_legs_prepared(fault_system, source, destination)
    killed = await _terminate_backends(fault_system, service)
    assert await _coordinator_status(fault_system, transaction_id) == "preparing", "the fault came before the decision"
    answer = await pending

    assert killed > 0, f"no connection of {service} was open to kill"
    assert answer.status == 200, answer.body
    assert answer.data["status"] == "committed"
    await _assert_settled(fault_system, (source, destination), {transaction_id: "committed"})
    assert await fault_api.balance(destination) == OPENING + 10
    await restart(fault_system, "transactions_service")


async def _both_legs_prepared(system: LocalSystem, source: uuid.UUID, destination: uuid.UUID) -> uuid.UUID:
    """Wait (bounded) until one transfer holds both accounts: both votes are in. Its transaction id."""
    give_up_at = time.monotonic() + PREPARED_WAIT_S
    while time.monotonic() < give_up_at:
        rows = await fetch(
            system,
            "accounts_service",
            "SELECT transaction_lock FROM accounts WHERE account_id = ANY($1::uuid[])",
            [source, destination],
        )
        locks = {row["transaction_lock"] for row in rows}
        if len(locks) == 1 and None not in locks:
            return locks.pop()
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"the transfer did not prepare both legs within {PREPARED_WAIT_S}s")


async def _coordinator_status(system: LocalSystem, transaction_id: uuid.UUID) -> str:
    [row] = await fetch(
        system, "transactions_service", "SELECT status FROM transactions WHERE transaction_id = $1", transaction_id
    )
    return row["status"]


async def _terminate_backends(system: LocalSystem, service: str) -> int:
    """pg_terminate_backend every connection to the service's database; how many there were."""
    connection = await asyncpg.connect(system.postgres.url("postgres"))
    try:
        return await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            system.database_name(service),
        )
    finally:
        await connection.close()


async def _protocol(api: Api, action: str, transaction_id: uuid.UUID, changes) -> dict:
    answer = await api.call(
        "POST",
        "accounts_service",
        f"/2pc/{action}",
        {
            "transaction_id": str(transaction_id),
            "changes": [{"account_id": str(account), "change": change} for account, change in changes],
        },
        auth=coordinator_token(),
    )
    return {"status": answer.status, **(answer.data or answer.body.get("error") or {})}


async def test_duplicated_and_reordered_messages(fault_api: Api, fault_system: LocalSystem) -> None:
    source, destination = await _accounts(fault_api)
    changes = [(source, Decimal("-40")), (destination, Decimal("40"))]
    committed, aborted = uuid.uuid4(), uuid.uuid4()

    votes = [await _protocol(fault_api, "prepare", committed, changes) for _ in range(3)]
    commits = [await _protocol(fault_api, "commit", committed, changes) for _ in range(3)]
    late_prepare = await _protocol(fault_api, "prepare", committed, changes)
    abort_after_commit = await _protocol(fault_api, "abort", committed, changes)
    early_abort = await _protocol(fault_api, "abort", aborted, changes)
    late_prepare_after_abort = await _protocol(fault_api, "prepare", aborted, changes)
    commit_after_abort = await _protocol(fault_api, "commit", aborted, changes)
    repeated_abort = await _protocol(fault_api, "abort", aborted, changes)

    assert [vote["vote"] for vote in votes] == ["yes"] * 3
    assert [commit["status"] for commit in commits] == [200] * 3
    assert late_prepare["vote"] == "yes"  # the log remembers its YES; nothing is locked again
    assert abort_after_commit["status"] == 409
    assert early_abort["status"] == 200
    assert late_prepare_after_abort["vote"] == "no" and late_prepare_after_abort["reason"] == "already_aborted"
    assert commit_after_abort["status"] == 409
    assert repeated_abort["status"] == 200
    assert await fault_api.balance(source) == OPENING - 40
    assert await fault_api.balance(destination) == OPENING + 40
    for account in (source, destination):
        status = await fault_api.call("GET", "accounts_service", f"/2pc/status/{account}", auth=token("service"))
        assert status.data["transaction_lock"] is None
