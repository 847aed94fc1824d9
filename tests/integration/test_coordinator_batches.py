"""The coordinator's batched steps against a real PostgreSQL log: a batch is a transport, never a unit of atomicity.

Transfers started together ride one statement per step and one message per participant, yet each keeps
its own vote, its own decision and its own answer (PROTOCOL.md, "Batches").
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from uuid import UUID

import pytest
import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from shared.errors import OutcomeUnknownError
from tests.integration import test_coordinator as base
from tests.integration.test_coordinator import (
    CALLER,
    COMMITTED,
    FakeParticipant,
    accepted,
    clear_fault,
    coordinator,
    participant_url,
    plant_fault,
    stored,
)
from transactions_service import db
from transactions_service.batching import BatchLimits
from transactions_service.domain import TransferRequest
from transactions_service.metrics import CoordinatorMetrics
from transactions_service.participants import ACCOUNTS_PARTICIPANT
from transactions_service.protocol import AbortReason, EventType, TransferStatus

# This module's own coordinator database (with the fault trigger), as test_coordinator makes it.
coordinator_db_url = base.coordinator_db_url
engine = base.engine
BATCHED = BatchLimits(items_max=16, window_s=0.002, in_flight_max=2, queue_max=256)


def named_request(source: UUID | None = None, amount: str = "10") -> TransferRequest:
    return TransferRequest(source or uuid.uuid4(), uuid.uuid4(), Decimal(amount), uuid.uuid4())


async def events_of(engine, transaction_id: UUID, event_type: EventType) -> list[dict]:
    async with engine.connect() as connection:
        return [
            event for event in await db.select_events(connection, transaction_id) if event["event_type"] == event_type
        ]


async def batch_of(engine, transaction_id: UUID, event_type: EventType) -> tuple[str, int]:
    [event] = await events_of(engine, transaction_id, event_type)
    return event["details"]["batch_id"], event["details"]["batch_size"]


async def test_transfers_started_together_ride_one_statement_and_one_message_per_step(engine):
    fake = FakeParticipant()
    requests = [named_request() for _ in range(5)]
    async with participant_url(fake) as url, coordinator(engine, url, batch_limits=BATCHED) as ours:
        transfers = await asyncio.gather(*(ours.transfer(request, CALLER, None) for request in requests))

    ids = [request.transaction_id for request in requests]
    assert [transfer.status for transfer in transfers] == [TransferStatus.COMMITTED] * 5
    assert all(transfer.completed for transfer in transfers)
    assert [sorted(message) for message in fake.prepare_messages] == [sorted(ids)]
    assert sorted(fake.decisions) == sorted(("/2pc/commit", transaction_id) for transaction_id in ids)
    for event_type in (EventType.ACCEPTED, EventType.VOTE, EventType.DECISION, EventType.ACKNOWLEDGED):
        batches = {await batch_of(engine, transaction_id, event_type) for transaction_id in ids}
        assert len(batches) == 1, (event_type, batches)
        assert next(iter(batches))[1] == 5


async def test_one_no_vote_aborts_only_its_own_transfer_in_a_batch(engine):
    requests = [named_request() for _ in range(4)]
    poor, broken = requests[1].transaction_id, requests[2].transaction_id
    fake = FakeParticipant(no_votes={poor: "insufficient_funds", broken: "invalid_legs"})
    async with participant_url(fake) as url, coordinator(engine, url, batch_limits=BATCHED) as ours:
        transfers = await asyncio.gather(*(ours.transfer(request, CALLER, None) for request in requests))

    outcomes = [(transfer.status, transfer.reason) for transfer in transfers]
    assert outcomes == [
        (TransferStatus.COMMITTED, None),
        (TransferStatus.ABORTED, AbortReason.INSUFFICIENT_FUNDS),
        (TransferStatus.ABORTED, AbortReason.PARTICIPANT_ERROR),  # "invalid_legs": the participant's fault
        (TransferStatus.COMMITTED, None),
    ]
    assert len(fake.prepare_messages) == 1
    assert len({await batch_of(engine, request.transaction_id, EventType.DECISION) for request in requests}) == 1
    heard = dict((transaction_id, path) for path, transaction_id in fake.decisions)
    assert heard == {
        requests[0].transaction_id: "/2pc/commit",
        poor: "/2pc/abort",
        broken: "/2pc/abort",
        requests[3].transaction_id: "/2pc/commit",
    }


async def test_a_batched_decision_meeting_a_transfer_aborted_by_recovery_follows_the_stored_one(engine):
    transfers = [await accepted(engine) for _ in range(3)]
    orphan = transfers[1]
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE transactions SET created_at = now() - interval '1 hour' WHERE transaction_id = :id"),
            {"id": orphan.transaction_id},
        )
        aborted = await db.abort_orphans(
            connection, deadline_s=60, reason=AbortReason.PREPARE_TIMEOUT.value, limit=1000
        )
    assert orphan.transaction_id in {transfer.transaction_id for transfer in aborted}

    async with participant_url(FakeParticipant()) as url, coordinator(engine, url, batch_limits=BATCHED) as ours:
        with structlog.testing.capture_logs() as logs:
            followed = await asyncio.gather(
                *(ours.record_decision(transfer.transaction_id, COMMITTED, []) for transfer in transfers)
            )

    assert [transfer.status for transfer in followed] == [
        TransferStatus.COMMITTED,
        TransferStatus.ABORTED,
        TransferStatus.COMMITTED,
    ]
    assert followed[1].reason is AbortReason.PREPARE_TIMEOUT
    assert [entry["transaction_id"] for entry in logs if entry["event"] == "decision_lost_race"] == [
        str(orphan.transaction_id)
    ]
    committed = {await batch_of(engine, transfers[index].transaction_id, EventType.DECISION) for index in (0, 2)}
    assert len(committed) == 1 and next(iter(committed))[1] == 3  # one statement carried all three
    assert await events_of(engine, orphan.transaction_id, EventType.DECISION) == []  # recovery logs none here


async def test_two_transfers_on_one_account_never_share_a_prepare_message(engine):
    shared_source = uuid.uuid4()
    requests = [named_request(shared_source), named_request(), named_request(shared_source)]
    fake = FakeParticipant(prepare_pause_s=0.05)
    async with participant_url(fake) as url, coordinator(engine, url, batch_limits=BATCHED) as ours:
        transfers = await asyncio.gather(*(ours.transfer(request, CALLER, None) for request in requests))

    assert [transfer.status for transfer in transfers] == [TransferStatus.COMMITTED] * 3
    first, _, second = (request.transaction_id for request in requests)
    assert not any(first in message and second in message for message in fake.prepare_messages)
    assert [sorted(message) for message in fake.prepare_messages][0] == sorted([first, requests[1].transaction_id])
    # The second waited here for the first's lock to go (its commit heard), not at the participant.
    heard = fake.heard_in_order
    assert heard.index(("/2pc/commit", first)) < heard.index(("prepare", second))
    assert len(ours.locks) == 0  # every transfer let its accounts go


async def test_a_killed_batch_decision_is_retried_alone_by_each_of_its_transfers(engine):
    requests = [named_request() for _ in range(3)]
    await plant_fault(engine, requests[0].source_account_id, "decide", kills=1)
    async with participant_url(FakeParticipant()) as url, coordinator(engine, url, batch_limits=BATCHED) as ours:
        transfers = await asyncio.gather(*(ours.transfer(request, CALLER, None) for request in requests))

    assert [transfer.status for transfer in transfers] == [TransferStatus.COMMITTED] * 3
    for request in requests:
        assert (await stored(engine, request.transaction_id)).status is TransferStatus.COMMITTED


async def test_a_decision_that_cannot_be_stored_leaves_its_batch_mates_decided(engine):
    requests = [named_request() for _ in range(3)]
    poisoned = requests[1]
    await plant_fault(engine, poisoned.source_account_id, "decide", kills=1000)
    try:
        async with (
            participant_url(FakeParticipant()) as url,
            coordinator(engine, url, batch_limits=BATCHED, decision_write_s=1.0) as ours,
        ):
            outcomes = await asyncio.gather(
                *(ours.transfer(request, CALLER, None) for request in requests), return_exceptions=True
            )
    finally:
        await clear_fault(engine, poisoned.source_account_id)

    assert isinstance(outcomes[1], OutcomeUnknownError)
    assert [outcome.status for outcome in (outcomes[0], outcomes[2])] == [TransferStatus.COMMITTED] * 2
    assert (await stored(engine, poisoned.transaction_id)).status is TransferStatus.PREPARING  # recovery's to decide


async def test_repeats_of_one_name_in_one_batch_run_the_transfer_once(engine):
    request = named_request()
    fake = FakeParticipant(prepare_pause_s=0.05)
    async with participant_url(fake) as url, coordinator(engine, url, batch_limits=BATCHED) as ours:
        transfers = await asyncio.gather(*(ours.transfer(request, CALLER, None) for _ in range(3)))

    assert {transfer.transaction_id for transfer in transfers} == {request.transaction_id}
    assert {transfer.status for transfer in transfers} == {TransferStatus.COMMITTED}
    assert fake.prepares == [request.transaction_id]


@pytest.mark.parametrize("items_max", [1, 16])
async def test_every_step_is_in_the_log_whatever_the_batch_size(engine, items_max):
    limits = BatchLimits(items_max=items_max, window_s=0.002, in_flight_max=2, queue_max=256)
    request = named_request()
    fake = FakeParticipant()
    async with participant_url(fake) as url, coordinator(engine, url, batch_limits=limits) as ours:
        transfer = await ours.transfer(request, CALLER, None)

    assert transfer.status is TransferStatus.COMMITTED and transfer.completed
    async with engine.connect() as connection:
        events = await db.select_events(connection, request.transaction_id)
    assert [event["event_type"] for event in events] == [
        "accepted",
        "prepare_sent",
        "vote",
        "decision",
        "decision_sent",
        "acknowledged",
        "completed",
    ]
    batched = [event["event_type"] for event in events if "batch_id" in event["details"]]
    assert batched == ([] if items_max == 1 else ["accepted", "vote", "decision", "acknowledged", "completed"])


async def test_a_prepare_waiting_for_an_account_rides_the_commit_that_releases_it(engine):
    shared_source = uuid.uuid4()
    requests = [named_request(shared_source), named_request(shared_source)]
    fake = FakeParticipant(prepare_pause_s=0.05)
    async with participant_url(fake) as url, coordinator(engine, url, batch_limits=BATCHED) as ours:
        transfers = await asyncio.gather(*(ours.transfer(request, CALLER, None) for request in requests))

    assert [transfer.status for transfer in transfers] == [TransferStatus.COMMITTED] * 2
    first, second = (request.transaction_id for request in requests)
    assert fake.prepare_messages == [[first], [second]]
    # The second's prepare travelled in the message that committed the first, after the commit.
    [vote] = await events_of(engine, second, EventType.VOTE)
    commit_message, _ = await batch_of(engine, first, EventType.ACKNOWLEDGED)
    assert (vote["details"]["batch_id"], vote["details"]["rode_with"]) == (commit_message, "commit")
    heard = fake.heard_in_order
    assert heard.index(("/2pc/commit", first)) < heard.index(("prepare", second))
    assert len(ours.locks) == 0


class RiderFailingParticipants(base.Participants):
    """Participants whose decision messages fail with an unexpected error whenever a prepare rides one."""

    async def send_decision_batch(self, participant, status, transfers, prepares=None):
        if prepares:
            raise RuntimeError("unexpected failure of a message carrying prepares")
        return await super().send_decision_batch(participant, status, transfers, prepares)


class LateFailingParticipants(base.Participants):
    """Participants whose first decision message fails after most of the send bound, and whose next ones
    hang: the decision sent again alone must end within what is left of that bound."""

    FAILS_AFTER_S = 0.4
    HANGS_S = 5.0
    calls = 0

    async def send_decision_batch(self, participant, status, transfers, prepares=None):
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(self.FAILS_AFTER_S)
            raise RuntimeError("unexpected failure of a decision message, late")
        await asyncio.sleep(self.HANGS_S)
        return await super().send_decision_batch(participant, status, transfers, prepares)


async def test_a_decision_sent_again_alone_keeps_to_the_send_bound_the_completion_lease_is_sized_by(engine):
    """Past decision_send_bound_s, recovery (or a replica) may take the transfer and send the same decision: a
    send of this attempt must not outlive it."""
    options = {"batch_limits": BATCHED, "participants_class": LateFailingParticipants, "decision_timeout_s": 0.3}
    async with participant_url(FakeParticipant()) as url, coordinator(engine, url, **options) as ours:
        bound_s = ours.decision_send_bound_s
        assert LateFailingParticipants.FAILS_AFTER_S < bound_s < LateFailingParticipants.HANGS_S
        started = time.monotonic()
        transfer = await ours.transfer(named_request(), CALLER, None)
        elapsed_s = time.monotonic() - started

    assert transfer.status is TransferStatus.COMMITTED and not transfer.completed  # recovery finishes it
    assert elapsed_s < bound_s + 1.0, (elapsed_s, bound_s)
    [failed] = await events_of(engine, transfer.transaction_id, EventType.ACK_FAILED)
    assert "no acknowledgement within" in failed["details"]["error"]


async def test_a_rider_whose_message_failed_is_aborted_and_the_decisions_it_rode_with_are_sent_again(engine):
    shared_source = uuid.uuid4()
    requests = [named_request(shared_source), named_request(shared_source)]
    fake = FakeParticipant(prepare_pause_s=0.05)
    options = {"batch_limits": BATCHED, "participants_class": RiderFailingParticipants}
    async with participant_url(fake) as url, coordinator(engine, url, **options) as ours:
        transfers = await asyncio.gather(*(ours.transfer(request, CALLER, None) for request in requests))

    first, second = transfers
    assert first.status is TransferStatus.COMMITTED and first.completed  # its commit went again, alone
    assert (second.status, second.reason) == (TransferStatus.ABORTED, AbortReason.PARTICIPANT_ERROR)
    assert ("/2pc/abort", second.transaction_id) in fake.decisions  # it may have been locked there
    assert (await stored(engine, second.transaction_id)).completed
    assert len(ours.locks) == 0


async def test_a_deferred_rider_is_sent_again_as_a_prepare_of_its_own_and_commits(engine):
    """The participant deferred the rider (it met a lock this coordinator did not know of): nothing was
    written for it there, so it goes again in a prepare message, and its transfer runs to its decision."""
    shared_source = uuid.uuid4()
    requests = [named_request(shared_source), named_request(shared_source)]
    fake = FakeParticipant(prepare_pause_s=0.05, deferred_riders=True)
    async with participant_url(fake) as url, coordinator(engine, url, batch_limits=BATCHED) as ours:
        first, second = await asyncio.gather(*(ours.transfer(request, CALLER, None) for request in requests))

    assert first.status is TransferStatus.COMMITTED and second.status is TransferStatus.COMMITTED
    assert fake.deferred == [second.transaction_id]  # it rode the first's commit message
    assert fake.heard_in_order.index(("/2pc/commit", first.transaction_id)) < fake.heard_in_order.index(
        ("prepare", second.transaction_id)
    )
    [vote] = await events_of(engine, second.transaction_id, EventType.VOTE)
    assert vote["details"]["vote"] == "yes" and "rode_with" not in vote["details"]  # its own prepare message
    assert len(ours.locks) == 0


async def test_a_prepare_message_waiting_at_its_participant_holds_back_later_prepares_only_until_it_stalls(engine):
    """With one batch of a step in flight, a prepare message that waits at the participant (another
    replica's lock) held back every later prepare to it, up to the participant's busy wait (2 s). Past
    stall_s its slot goes to the next batch, which decides beside it."""
    slow, quick = named_request(), named_request()
    fake = FakeParticipant(held_prepares={slow.transaction_id})
    limits = BatchLimits(items_max=16, window_s=0.002, in_flight_max=1, queue_max=256, stall_s=0.1)
    registry = CollectorRegistry()
    metrics = CoordinatorMetrics(registry)
    async with participant_url(fake) as url, coordinator(engine, url, batch_limits=limits, metrics=metrics) as ours:
        waiting = asyncio.create_task(ours.transfer(slow, CALLER, None))
        await asyncio.wait_for(_until(lambda: fake.prepare_messages), timeout=5)
        # Within the prepare timeout (2 s) the slow prepare is still held when the quick transfer is decided.
        decided = await asyncio.wait_for(ours.transfer(quick, CALLER, None), timeout=1.5)
        fake.prepare_gate.set()
        assert (await waiting).status is TransferStatus.COMMITTED

    assert decided.status is TransferStatus.COMMITTED
    assert fake.prepare_messages == [[slow.transaction_id], [quick.transaction_id]]
    stalled = ours.batchers.prepare[ACCOUNTS_PARTICIPANT].flights_stalled()
    assert stalled >= 1
    sample = registry.get_sample_value("coordinator_batch_flights_stalled_total", {"batcher": "prepare-accounts"})
    assert sample == stalled


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("limits", [BATCHED, BatchLimits(items_max=1)], ids=["batched", "one-at-a-time"])
async def test_a_refused_prepare_is_no_vote_and_its_accounts_stay_held_until_the_abort_is_acknowledged(engine, limits):
    """A 500 may come after the participant locked the accounts: no vote, not a NO. The coordinator must not
    send another prepare for them before the abort is acknowledged, as it may after an answered NO."""
    fake = FakeParticipant(refused_prepares=True, decision_pause_s=0.3)
    request = named_request()
    async with participant_url(fake) as url, coordinator(engine, url, batch_limits=limits) as ours:
        running = asyncio.create_task(ours.transfer(request, CALLER, None))
        await asyncio.wait_for(fake.heard_decision.wait(), timeout=5)
        if limits.items_max > 1:  # one at a time holds nothing in the coordinator: the participant's lock decides
            accounts = [request.source_account_id, request.destination_account_id]
            assert ours.locks.held(accounts), "released while the abort was unacknowledged"
        transfer = await running

    assert (transfer.status, transfer.reason) == (TransferStatus.ABORTED, AbortReason.PARTICIPANT_ERROR)
    assert [event["details"]["vote"] for event in await events_of(engine, transfer.transaction_id, EventType.VOTE)] == [
        "none"
    ]
    assert ("/2pc/abort", transfer.transaction_id) in fake.decisions
    assert len(ours.locks) == 0


async def test_riders_answered_with_no_votes_are_aborted_and_the_decisions_acknowledged(engine):
    shared_source = uuid.uuid4()
    requests = [named_request(shared_source), named_request(shared_source)]
    fake = FakeParticipant(prepare_pause_s=0.05, riders_unprepared=True)
    async with participant_url(fake) as url, coordinator(engine, url, batch_limits=BATCHED) as ours:
        first, second = await asyncio.gather(*(ours.transfer(request, CALLER, None) for request in requests))

    assert first.status is TransferStatus.COMMITTED and first.completed
    assert [event["details"]["vote"] for event in await events_of(engine, second.transaction_id, EventType.VOTE)] == [
        "none"
    ]
    assert (second.status, second.reason) == (TransferStatus.ABORTED, AbortReason.PARTICIPANT_ERROR)
    assert ("/2pc/abort", second.transaction_id) in fake.decisions
    assert len(ours.locks) == 0
