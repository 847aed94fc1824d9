"""The protocol's steps for a batch of transfers: each step one statement or one message per participant.

These are the flushes the coordinator's batchers call (transactions_service/batching.py). Each takes
many transfers and answers each its own result, in order: its own row, its own vote, its own decision,
its own acknowledgement. With batching off (BATCH_MAX_TRANSFERS=1) every batch is one transfer and the
messages go to the single routes (/2pc/prepare, /2pc/commit, /2pc/abort), as the classic protocol has it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from dataclasses import dataclass, replace
from functools import partial
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.hot_sql import raw_connection
from transactions_service import db
from transactions_service.batching import Batch, Batcher, BatchLimits, Holds
from transactions_service.domain import Event, Leg, NewTransfer, Transfer
from transactions_service.metrics import CoordinatorMetrics
from transactions_service.participants import Participants
from transactions_service.protocol import AbortReason, Decision, TransferStatus, Vote

log = structlog.get_logger()

# What each phase's batcher carries for one transfer.
PrepareItem = tuple[UUID, list[Leg]]  # the transfer and its legs at that participant
DecideItem = tuple[UUID, Decision, list[Event]]  # the decision and the events logged with it, DECISION last
SendItem = tuple[UUID, list[Leg]]
CompleteItem = tuple[UUID, list[Event], bool]  # the attempt's events (COMPLETED last), all acknowledged?


# The step a decision message is (its batch-size metric's phase, and a rider's `rode_with`).
DECISION_STEPS = {TransferStatus.COMMITTED: "commit", TransferStatus.ABORTED: "abort"}


@dataclass(frozen=True, slots=True)
class Prepared:
    """One transfer's vote from one participant, the batch it rode in and how long the message took;
    `rode_with` names the decision ("commit" or "abort") whose message carried it, if one did."""

    vote: Vote
    latency_ms: int
    batch: Batch
    rode_with: str | None = None


@dataclass(frozen=True, slots=True)
class Stored:
    """A transfer after its decision's compare-and-set: the stored transfer, and whether ours was stored now."""

    transfer: Transfer
    stored_now: bool


@dataclass(frozen=True, slots=True)
class Sent:
    """One transfer's decision sent to one participant: None when acknowledged, else why not."""

    failure: str | None
    latency_ms: int
    batch: Batch


@dataclass
class Phases:
    engine: AsyncEngine  # every step is one statement, atomic on its own: run outside a transaction
    participants: Participants
    metrics: CoordinatorMetrics
    batching: bool
    completion_grace_s: float
    retry_first_s: float
    retry_max_s: float

    def batched(self, event: Event, batch: Batch) -> Event:
        """The event with the batch it rode in (batch_id, batch_size), when batching is on."""
        return replace(event, details={**event.details, **batch.details()}) if self.batching else event

    def _count(self, phase: str, batch: Batch) -> None:
        self.metrics.batch_size.labels(phase).observe(batch.size)

    async def accept(self, transfers: list[NewTransfer], batch: Batch) -> list[Transfer | None]:
        """One INSERT for the batch: each transfer's row `preparing` with its first events (ACCEPTED first);
        None for a transfer whose name (id or Idempotency-Key) a stored transfer holds."""
        self._count("accept", batch)
        marked = [replace(new, events=[self.batched(new.events[0], batch), *new.events[1:]]) for new in transfers]
        async with raw_connection(self.engine) as connection:
            accepted = await db.insert_transfers(connection, marked)
        return [accepted.get(new.transaction_id) for new in transfers]

    async def prepare(self, participant: str, transfers: list[PrepareItem], batch: Batch) -> list[Prepared]:
        """One prepare message to the participant for every transfer of the batch; a vote each."""
        self._count("prepare", batch)
        if self.batching:
            votes, latency_ms = await self.participants.prepare_batch(participant, transfers)
        else:
            [(transaction_id, legs)] = transfers
            vote, latency_ms = await self.participants.prepare(participant, transaction_id, legs)
            votes = [vote]
        assert len(votes) == len(transfers), "a vote per transfer"
        return [Prepared(vote, latency_ms, batch) for vote in votes]

    async def decide(self, decisions: list[DecideItem], batch: Batch) -> list[Stored]:
        """One compare-and-set statement for every decision of the batch (each transfer its own outcome);
        a transfer decided first by recovery or a replica reads back the stored decision."""
        self._count("decide", batch)
        marked = [
            (transaction_id, decision, self._mark_last(events, batch)) for transaction_id, decision, events in decisions
        ]
        async with raw_connection(self.engine) as connection:
            stored = await db.store_decisions(connection, marked, completion_grace_s=self.completion_grace_s)
            lost = [transaction_id for transaction_id, _, _ in decisions if transaction_id not in stored]
            earlier = await db.select_transfers(connection, lost) if lost else {}
        assert len(earlier) == len(lost), "a transfer whose compare-and-set lost is stored"
        return [
            Stored(stored[transaction_id], True) if transaction_id in stored else Stored(earlier[transaction_id], False)
            for transaction_id, _, _ in decisions
        ]

    async def send(
        self,
        participant: str,
        status: TransferStatus,
        transfers: list[SendItem],
        batch: Batch,
        riders: list[PrepareItem] | None = None,
    ) -> tuple[list[Sent], list[Prepared | None]]:
        """One commit (or abort) message to the participant for every transfer of the batch; an answer each.

        `riders`: prepares the same message carries, which the participant runs after the decisions (so a
        prepare waiting for an account one of these transfers holds takes it in the same round trip); a vote
        each, or None for a rider the participant deferred (it met a lock there). Only with batching."""
        riders = riders or []
        assert self.batching or not riders, "a prepare rides a decision only in a batch message"
        self._count(DECISION_STEPS[status], batch)
        if riders:
            self._count("prepare", Batch(batch.batch_id, len(riders)))
        started = time.perf_counter()
        if self.batching:
            failures, votes = await self.participants.send_decision_batch(participant, status, transfers, riders)
        else:
            [(transaction_id, legs)] = transfers
            failures, votes = [await self.participants.send_decision(participant, transaction_id, status, legs)], []
        assert len(failures) == len(transfers) and len(votes) == len(riders), "an answer per transfer"
        latency_ms = int((time.perf_counter() - started) * 1000)
        return [Sent(failure, latency_ms, batch) for failure in failures], [
            None if vote is None else _rider_vote(vote, latency_ms, status, batch, len(riders)) for vote in votes
        ]

    async def complete(self, attempts: list[CompleteItem], batch: Batch) -> list[Transfer | None]:
        """One statement for every completion attempt of the batch; each transfer completed now, or None."""
        self._count("complete", batch)
        marked = [(transaction_id, self._mark_last(events, batch), acked) for transaction_id, events, acked in attempts]
        async with raw_connection(self.engine) as connection:
            completed = await db.record_completions(
                connection, marked, retry_first_s=self.retry_first_s, retry_max_s=self.retry_max_s
            )
        return [completed.get(transaction_id) for transaction_id, _, _ in attempts]

    def _mark_last(self, events: list[Event], batch: Batch) -> list[Event]:
        return [*events[:-1], self.batched(events[-1], batch)] if events else events


@dataclass
class Batchers:
    """One batcher per protocol step (per participant for the messages), each flushing one step of Phases."""

    accept: Batcher[NewTransfer, Transfer | None]
    prepare: dict[str, Batcher[PrepareItem, Prepared]]
    decide: Batcher[DecideItem, Stored]
    send: dict[tuple[str, TransferStatus], Batcher[SendItem, Sent]]
    complete: Batcher[CompleteItem, Transfer | None]

    @classmethod
    def of(cls, phases: Phases, participants: tuple[str, ...], limits: BatchLimits, locks: Holds) -> Batchers:
        """`locks`: the accounts this coordinator's transfers hold at their participants, taken when their
        prepare leaves and released once the participant no longer locks them (Coordinator)."""
        decisions = (TransferStatus.COMMITTED, TransferStatus.ABORTED)
        prepare = {
            name: Batcher(
                f"prepare-{name}", partial(phases.prepare, name), limits, keys_of=_accounts, holds=(locks, _holder)
            )
            for name in participants
        }
        return cls(
            accept=Batcher("accept", phases.accept, limits, keys_of=_names),
            prepare=prepare,
            decide=Batcher("decide", phases.decide, limits, keys_of=_transaction),
            send={
                (name, status): Batcher(
                    f"{status.value}-{name}",
                    partial(_send_with_riders, phases, prepare[name], name, status),
                    limits,
                    keys_of=_transaction,
                )
                for name in participants
                for status in decisions
            },
            complete=Batcher("complete", phases.complete, limits, keys_of=_transaction),
        )

    def all(self) -> list[Batcher]:
        return [self.accept, *self.prepare.values(), self.decide, *self.send.values(), self.complete]

    async def close(self) -> None:
        for batcher in self.all():
            await batcher.close()


async def _send_with_riders(
    phases: Phases,
    prepare: Batcher[PrepareItem, Prepared],
    participant: str,
    status: TransferStatus,
    transfers: list[SendItem],
    batch: Batch,
) -> list[Sent]:
    """A decision message that also carries the prepares waiting at that moment for this participant,
    those behind the accounts these transfers release included: under hot accounts the next holder's
    prepare then costs no round trip of its own, and a lock is handed on inside the participant."""
    riders = prepare.lend(frozenset(transaction_id for transaction_id, _ in transfers))
    try:
        sent, prepared = await phases.send(participant, status, transfers, batch, [entry.item for entry in riders])
    except asyncio.CancelledError as cancelled:
        prepare.settle(riders, cancelled)
        raise
    except Exception:
        # The decisions are sent again alone (Coordinator._send_decision); a rider may be locked there or
        # not, so it goes unanswered: its transfer aborts and the participant hears the abort.
        log.warning("riders_unanswered", details={"participant": participant, "transfers": len(riders)})
        unanswered = Vote(participant, answered=False, reason=AbortReason.PARTICIPANT_ERROR)
        prepare.settle(riders, [_rider_vote(unanswered, 0, status, batch, len(riders)) for _ in riders])
        raise
    deferred = [entry for entry, vote in zip(riders, prepared, strict=True) if vote is None]
    prepare.settle(
        [entry for entry, vote in zip(riders, prepared, strict=True) if vote is not None],
        [vote for vote in prepared if vote is not None],
    )
    if deferred:  # they met a lock this coordinator did not know of (another replica's): they go again as prepares
        log.info("riders_deferred", details={"participant": participant, "transfers": len(deferred)})
        prepare.requeue(deferred)
    return sent


def _rider_vote(vote: Vote, latency_ms: int, status: TransferStatus, batch: Batch, riders: int) -> Prepared:
    """A rider's vote, in the decision message's batch: its id, and the number of prepares it carried."""
    return Prepared(vote, latency_ms, Batch(batch.batch_id, riders), rode_with=DECISION_STEPS[status])


def _names(new: NewTransfer) -> list[Hashable]:
    """A transfer's unique names: two transfers of one name never share an INSERT (the second then meets
    the first's row, as a repeat does: ON CONFLICT, then the replay)."""
    names: list[Hashable] = [new.transaction_id]
    if new.idempotency_key is not None:
        names.append((new.requested_by, new.idempotency_key))
    return names


def _accounts(item: PrepareItem) -> list[Hashable]:
    """The accounts a prepare locks. The lock is one transfer's: one message never holds two transfers on
    one account, and a prepare waits here while a transfer of this coordinator holds one of its accounts,
    rather than meet that lock at the participant and hold its whole message. Waiting prepares are served
    first come first served, except that a later one may take a free account (batching.OVERTAKES_MAX)."""
    return [leg.account_id for leg in item[1]]


def _holder(item: PrepareItem) -> Hashable:
    return item[0]


def _transaction(item: tuple) -> list[Hashable]:
    """One row (and one entry) per transfer in a statement or a message."""
    return [item[0]]
