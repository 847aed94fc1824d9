"""Crash a real process at every named failpoint, restart it, and hold the system to all six invariants.

The single-transfer coordinator crashes run the classic protocol (BATCH_MAX_TRANSFERS=1); the batch crashes
run several transfers in one batch of every step (PROTOCOL.md, "Batches"), so every coordinator failpoint
is crossed both ways. The other tests run as the environment says (batching on by default).
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import aiohttp
import asyncpg
import pytest

from harness.system import LocalSystem
from shared.failpoints import CRASH_EXIT_CODE
from tests.conftest import token
from tests.e2e.conftest import ALICE, BOB, Api, fetch
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
CLASSIC = {"BATCH_MAX_TRANSFERS": "1"}
# A batch crash: this many transfers in one batch, behind a first request whose accept the test holds on
# a table lock, with one batch of each step in flight at a time, so all of them gather in the next batch.
BATCH_TRANSFERS = 4
BATCHED_ONE_IN_FLIGHT = {"BATCH_MAX_TRANSFERS": "64", "BATCHES_IN_FLIGHT_MAX": "1"}
# Failpoints after which the stored decision (commit: every vote was YES) is what recovery finishes.
DECIDED_FAILPOINTS = ("after_decision_before_complete", "between_commits")
LOCK_SEEN_TIMEOUT_S = 10.0
QUEUED_TIMEOUT_S = 10.0


async def _two_accounts(api: Api, *, different_shards: bool = False) -> tuple[uuid.UUID, uuid.UUID]:
    source = await api.open_account(ALICE, OPENING)
    while True:
        destination = await api.open_account(BOB, OPENING)
        if not different_shards or destination.int % 2 != source.int % 2:
            return source, destination


async def _transfer_into_crash(
    api: Api, source: uuid.UUID, destination: uuid.UUID, *, key: str | None = None
) -> tuple[str | None, str]:
    """The client's view: (transaction_id or None, what it was told: committed/aborted/indeterminate)."""
    try:
        answer = await api.transfer(source, destination, AMOUNT, key=key or str(uuid.uuid4()))
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
    await restart(fault_system, "transactions_service", {**CLASSIC, "FAILPOINTS": f"{failpoint}=crash"})

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
    await restart(fault_system, "transactions_service", {**shards, **CLASSIC, "FAILPOINTS": "between_commits=crash"})

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


@pytest.mark.parametrize("failpoint", [*COORDINATOR_FAILPOINTS, "between_commits"])
async def test_coordinator_crash_in_the_middle_of_a_batch(fault_api: Api, fault_system: LocalSystem, failpoint: str):
    """Several transfers in one batch of every step when the coordinator dies: each is finished the one right
    way (aborted before the decision, committed after it), nothing stays locked, no money moves wrongly."""
    shards = _shards(fault_system) if failpoint == "between_commits" else {}
    pairs = [await _two_accounts(fault_api, different_shards=bool(shards)) for _ in range(BATCH_TRANSFERS)]
    pilot = (*await _two_accounts(fault_api), str(uuid.uuid4()))  # a transfer made once, repeated below
    assert (await fault_api.transfer(pilot[0], pilot[1], AMOUNT, key=pilot[2])).status == 200
    overrides = {**shards, **BATCHED_ONE_IN_FLIGHT}
    await restart(fault_system, "transactions_service", {**overrides, "FAILPOINTS": f"{failpoint}=crash"})

    keys = [str(uuid.uuid4()) for _ in pairs]
    told = await _one_batch_into_crash(fault_api, fault_system, pairs, keys, pilot)
    exit_code = await wait_for_exit(fault_system, "transactions_service")
    await restart(fault_system, "transactions_service", overrides)

    assert exit_code == CRASH_EXIT_CODE
    assert all(outcome == "indeterminate" for _, outcome in told), told
    accounts = [account for pair in pairs for account in pair]
    report, elapsed = await settled_report(fault_system, accounts, OPENING * 2 * len(pairs))
    assert report.violations == [], f"after {elapsed:.1f}s: {report.violations}"
    assert await _accept_batches(fault_system, keys) == [(BATCH_TRANSFERS, BATCH_TRANSFERS)]
    statuses = await _statuses(fault_system, keys)
    # Each source moved exactly as its transfer's stored decision says.
    moved = [AMOUNT if status == "committed" else Decimal(0) for status in statuses]
    balances = [await fault_api.balance(source) for source, _ in pairs]
    assert balances == [OPENING - amount for amount in moved], (statuses, balances)
    if failpoint in DECIDED_FAILPOINTS:
        # The transfer that reached the failpoint had its commit stored; its batch-mates normally did too, but
        # one that a slow step left behind the crash was still undecided then, and is rightly aborted.
        assert "committed" in statuses, statuses
    else:
        assert statuses == ["aborted"] * len(pairs), statuses
    if shards:
        await restart(fault_system, "transactions_service")


def _shards(system: LocalSystem) -> dict[str, str]:
    """Two participants (shards) on one accounts service, so a transfer has two commits to crash between."""
    accounts_url = system.url("accounts_service")
    return {"ACCOUNTS_SHARD_URLS": f"{accounts_url},{accounts_url}"}


async def _one_batch_into_crash(api: Api, system: LocalSystem, pairs, keys: list[str], pilot):
    """Hold the accept of a repeat (its insert meets the first's row: it hits no failpoint) on a table lock,
    send the transfers meanwhile (they gather behind it), then let go: they leave in one batch."""
    holder = await asyncpg.connect(system.database_url("transactions_service"))
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE transactions IN SHARE MODE")  # INSERTs wait, reads do not
            repeat = asyncio.create_task(api.transfer(pilot[0], pilot[1], AMOUNT, key=pilot[2]))
            await _until_an_insert_waits(system)
            crashing = [
                asyncio.create_task(_transfer_into_crash(api, source, destination, key=key))
                for (source, destination), key in zip(pairs, keys, strict=True)
            ]
            await _until_accepts_wait(api, len(crashing))  # every transfer is queued behind the pilot
    finally:
        await holder.close()
    told = await asyncio.gather(*crashing)
    await asyncio.gather(repeat, return_exceptions=True)
    return told


async def _until_an_insert_waits(system: LocalSystem) -> None:
    deadline = asyncio.get_running_loop().time() + LOCK_SEEN_TIMEOUT_S
    query = """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%INSERT INTO transactions%'"""
    while not (await fetch(system, "transactions_service", query))[0][0]:
        assert asyncio.get_running_loop().time() < deadline, "the pilot's accept never reached the lock"
        await asyncio.sleep(0.02)


async def _until_accepts_wait(api: Api, count: int) -> None:
    """Until the coordinator's accept batcher holds `count` transfers waiting (its /metrics gauge)."""
    deadline = asyncio.get_running_loop().time() + QUEUED_TIMEOUT_S
    url = api.system.url("transactions_service") + "/metrics"
    sample = 'coordinator_batch_waiting{batcher="accept"} '
    while True:
        async with api.session.get(url) as response:
            lines = [line for line in (await response.text()).splitlines() if line.startswith(sample)]
        if lines and float(lines[0].removeprefix(sample)) >= count:
            return
        assert asyncio.get_running_loop().time() < deadline, f"not every transfer reached the accept queue: {lines}"
        await asyncio.sleep(0.02)


async def _statuses(system: LocalSystem, keys: list[str]) -> list[str]:
    """The stored status of each transfer, in the order of `keys`."""
    rows = await fetch(
        system,
        "transactions_service",
        "SELECT idempotency_key, status FROM transactions WHERE idempotency_key = ANY($1::text[])",
        keys,
    )
    by_key = {row["idempotency_key"]: row["status"] for row in rows}
    return [by_key[key] for key in keys]


async def _accept_batches(system: LocalSystem, keys: list[str]) -> list[tuple[int, int]]:
    """(transfers of ours, batch_size) for each accept batch our transfers rode in."""
    rows = await fetch(
        system,
        "transactions_service",
        """SELECT e.details->>'batch_id' AS batch_id, (e.details->>'batch_size')::int AS size, count(*) AS ours
           FROM transactions t JOIN transaction_events e USING (transaction_id)
           WHERE t.idempotency_key = ANY($1::text[]) AND e.event_type = 'accepted'
           GROUP BY 1, 2""",
        keys,
    )
    return [(row["ours"], row["size"]) for row in rows]
