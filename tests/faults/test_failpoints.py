"""Crash a real process at every named failpoint, restart it, and hold the system to all six invariants."""

from __future__ import annotations

import uuid
from decimal import Decimal

import aiohttp
import pytest

from harness.system import LocalSystem
from shared.failpoints import CRASH_EXIT_CODE
from tests.conftest import token
from tests.e2e.conftest import ALICE, BOB, Api
from tests.faults.conftest import RECOVERY_BOUND_S, restart, settled_report, wait_for_exit

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

OPENING = Decimal("500")
AMOUNT = Decimal("125.5")

COORDINATOR_FAILPOINTS = [
    "after_accept",
    "after_first_prepare",
    "after_all_votes_before_decision",
    "after_decision_before_complete",
]
PARTICIPANT_FAILPOINTS = ["after_prepare_before_answer", "after_local_commit_before_answer"]


async def _two_accounts(api: Api, *, different_shards: bool = False) -> tuple[uuid.UUID, uuid.UUID]:
    source = await api.open_account(ALICE, OPENING)
    while True:
        destination = await api.open_account(BOB, OPENING)
        if not different_shards or destination.int % 2 != source.int % 2:
            return source, destination


async def _transfer_into_crash(api: Api, source: uuid.UUID, destination: uuid.UUID) -> tuple[str | None, str]:
    """The client's view: (transaction_id or None, what it was told: committed/aborted/indeterminate)."""
    try:
        answer = await api.transfer(source, destination, AMOUNT, key=str(uuid.uuid4()))
    except aiohttp.ClientError:
        return None, "indeterminate"
    if answer.status == 200:
        return answer.data["transaction_id"], "committed"
    if answer.status == 409 and (answer.body["error"].get("details") or {}).get("status") == "aborted":
        return answer.body["error"]["details"]["transaction_id"], "aborted"
    return None, "indeterminate"


async def _assert_recovered(system: LocalSystem, accounts, told: tuple[str | None, str]) -> None:
    transaction_id, outcome = told
    outcomes = {uuid.UUID(transaction_id): outcome} if transaction_id and outcome != "indeterminate" else {}
    report, elapsed = await settled_report(system, list(accounts), OPENING * 2, outcomes)
    assert report.violations == [], f"after {elapsed:.1f}s: {report.violations}"
    assert elapsed <= RECOVERY_BOUND_S


@pytest.mark.parametrize("failpoint", COORDINATOR_FAILPOINTS)
async def test_coordinator_crash_at_failpoint(fault_api: Api, fault_system: LocalSystem, failpoint: str) -> None:
    source, destination = await _two_accounts(fault_api)
    await restart(fault_system, "transactions_service", {"FAILPOINTS": f"{failpoint}=crash"})

    told = await _transfer_into_crash(fault_api, source, destination)
    exit_code = await wait_for_exit(fault_system, "transactions_service")
    await restart(fault_system, "transactions_service")

    assert exit_code == CRASH_EXIT_CODE
    assert told[1] == "indeterminate"
    await _assert_recovered(fault_system, (source, destination), told)


async def test_coordinator_crash_between_the_two_commits(fault_api: Api, fault_system: LocalSystem) -> None:
    """Two participants (shards), so there are two commits to crash between."""
    accounts_url = fault_system.url("accounts_service")
    shards = {"ACCOUNTS_SHARD_URLS": f"{accounts_url},{accounts_url}"}
    source, destination = await _two_accounts(fault_api, different_shards=True)
    await restart(fault_system, "transactions_service", {**shards, "FAILPOINTS": "between_commits=crash"})

    told = await _transfer_into_crash(fault_api, source, destination)
    exit_code = await wait_for_exit(fault_system, "transactions_service")
    half_done = [await fault_api.balance(source), await fault_api.balance(destination)]
    await restart(fault_system, "transactions_service", shards)

    assert exit_code == CRASH_EXIT_CODE
    # Exactly one leg was applied before the crash: the money is in flight until recovery commits the other.
    assert sum(half_done) in (OPENING * 2 - AMOUNT, OPENING * 2 + AMOUNT), half_done
    await _assert_recovered(fault_system, (source, destination), told)
    assert await fault_api.balance(source) == OPENING - AMOUNT
    await restart(fault_system, "transactions_service")


@pytest.mark.parametrize("failpoint", PARTICIPANT_FAILPOINTS)
async def test_participant_crash_at_failpoint(fault_api: Api, fault_system: LocalSystem, failpoint: str) -> None:
    source, destination = await _two_accounts(fault_api)
    await restart(fault_system, "accounts_service", {"FAILPOINTS": f"{failpoint}=crash"})

    told = await _transfer_into_crash(fault_api, source, destination)
    exit_code = await wait_for_exit(fault_system, "accounts_service")
    await restart(fault_system, "accounts_service")

    assert exit_code == CRASH_EXIT_CODE
    expected = "aborted" if failpoint == "after_prepare_before_answer" else "committed"
    assert told[1] == expected, told
    await _assert_recovered(fault_system, (source, destination), told)


async def test_orphaned_prepare_is_unlocked_after_the_coordinator_returns(
    fault_api: Api, fault_system: LocalSystem
) -> None:
    """The original system's bug: a prepare whose coordinator died stayed locked forever."""
    source, destination = await _two_accounts(fault_api)
    await restart(fault_system, "transactions_service", {"FAILPOINTS": "after_first_prepare=crash"})
    await _transfer_into_crash(fault_api, source, destination)
    await wait_for_exit(fault_system, "transactions_service")
    locked = await fault_api.call("GET", "accounts_service", f"/2pc/status/{source}", auth=token("service"))
    assert locked.data["transaction_lock"] is not None, "the crash left the prepare holding the row"

    await restart(fault_system, "transactions_service")

    await _assert_recovered(fault_system, (source, destination), (None, "indeterminate"))
    unlocked = await fault_api.call("GET", "accounts_service", f"/2pc/status/{source}", auth=token("service"))
    assert unlocked.data["transaction_lock"] is None
