"""Group commit over the real services: concurrent transfers ride fewer batches, each keeping its own outcome.

The system runs as the environment says (batching on by default); with BATCH_MAX_TRANSFERS=1 every
transfer travels alone, and these tests check that instead.
"""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from uuid import UUID

import pytest

from harness.invariants import check_invariants
from tests.e2e.conftest import ALICE, BOB, Api, fetch

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

CONCURRENT_TRANSFERS = 24
OPENING = Decimal("100")
AMOUNT = Decimal("7.5")
BATCHING = os.environ.get("BATCH_MAX_TRANSFERS", "") != "1"
_BATCHES_OF = """
    SELECT e.transaction_id, e.event_type, e.details->>'batch_id' AS batch_id, (e.details->>'batch_size')::int AS size
    FROM transaction_events e
    WHERE e.transaction_id = ANY($1::uuid[]) AND e.event_type IN ('accepted', 'vote', 'decision')"""


async def _batches(api: Api, transaction_ids: list[UUID]) -> dict[str, dict[UUID, tuple[str | None, int | None]]]:
    """For each batched step, each transfer's (batch_id, batch_size), read from the coordinator log."""
    rows = await fetch(api.system, "transactions_service", _BATCHES_OF, transaction_ids)
    steps: dict[str, dict[UUID, tuple[str | None, int | None]]] = {}
    for row in rows:
        steps.setdefault(row["event_type"], {})[row["transaction_id"]] = (row["batch_id"], row["size"])
    return steps


async def _invariants_hold(api: Api, accounts: list[UUID], told: dict[UUID, str]) -> None:
    report = await check_invariants(
        api.system.database_url("accounts_service"),
        api.system.database_url("transactions_service"),
        accounts,
        expected_total=OPENING * len(accounts),
        client_outcomes=told,
    )
    assert report.violations == []


async def test_concurrent_transfers_ride_fewer_batches_and_every_balance_is_right(api: Api) -> None:
    sources = [await api.open_account(ALICE, OPENING) for _ in range(CONCURRENT_TRANSFERS)]
    destinations = [await api.open_account(BOB, OPENING) for _ in range(CONCURRENT_TRANSFERS)]

    answers = await asyncio.gather(
        *(api.transfer(source, destination, AMOUNT) for source, destination in zip(sources, destinations, strict=True))
    )

    assert [answer.status for answer in answers] == [200] * CONCURRENT_TRANSFERS, [a.body for a in answers]
    ids = [UUID(answer.data["transaction_id"]) for answer in answers]
    assert [await api.balance(account) for account in sources] == [OPENING - AMOUNT] * CONCURRENT_TRANSFERS
    assert [await api.balance(account) for account in destinations] == [OPENING + AMOUNT] * CONCURRENT_TRANSFERS
    await _invariants_hold(api, sources + destinations, {transaction_id: "committed" for transaction_id in ids})
    steps = await _batches(api, ids)
    for step in ("accepted", "vote", "decision"):
        batches = set(steps[step].values())
        if not BATCHING:
            assert batches == {(None, None)}, step  # each transfer alone, as the classic protocol has it
            continue
        assert len(batches) < CONCURRENT_TRANSFERS, (step, batches)  # some transfers shared a batch
        for batch_id, size in batches:  # each batch's recorded size is how many transfers rode in it
            riders = [transaction_id for transaction_id, batch in steps[step].items() if batch[0] == batch_id]
            assert len(riders) == size, (step, batch_id)


async def test_transfers_on_one_hot_account_never_share_a_prepare_and_all_commit(api: Api) -> None:
    """The lock is one transfer's: two transfers of one account ride separate prepare messages, the second
    meeting the first's lock as any later prepare would, and waiting for it, never deadlocking."""
    hot = await api.open_account(ALICE, OPENING)
    others = [await api.open_account(BOB, OPENING) for _ in range(6)]

    answers = await asyncio.gather(*(api.transfer(hot, other, AMOUNT) for other in others))

    assert [answer.status for answer in answers] == [200] * len(others), [a.body for a in answers]
    assert await api.balance(hot) == OPENING - AMOUNT * len(others)
    ids = [UUID(answer.data["transaction_id"]) for answer in answers]
    await _invariants_hold(api, [hot, *others], {transaction_id: "committed" for transaction_id in ids})
    if BATCHING:
        prepares = [batch_id for batch_id, _ in (await _batches(api, ids))["vote"].values()]
        assert len(set(prepares)) == len(prepares)  # every transfer on the hot account rode its own prepare
