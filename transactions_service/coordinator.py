"""The transfer, as PROTOCOL.md orders it: accept and log, prepare, decide by compare-and-set, complete.

The coordinator log is written before every step that matters: the `preparing` row before any
prepare is sent (so recovery knows to abort it), the decision before any participant hears it (the
commit point), and `completed` only after every participant acknowledged.

Each step rides a batch with other transfers at the same step (phases.py, batching.py): one statement or
one message for many. A batch is only a transport: every transfer's coroutine awaits its own steps in
the order above, so each rule holds per transfer, and the log stays one row per transfer for recovery.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import failpoints
from shared.database import autocommit, database_unavailable, sqlstate_of
from shared.errors import ConflictError, IdempotencyKeyReusedError, OutcomeUnknownError, ServiceUnavailableError
from transactions_service import db
from transactions_service.batching import BatchLimits, Holds, new_batch
from transactions_service.domain import Event, Leg, NewTransfer, Transfer, TransferRequest
from transactions_service.metrics import CoordinatorMetrics
from transactions_service.participants import PARTICIPANT_BATCH_MAX, PARTICIPANTS_PER_TRANSFER_MAX, Participants
from transactions_service.phases import Batchers, Phases, Prepared, Sent, Stored
from transactions_service.protocol import AbortReason, Decision, EventType, TransferStatus, Vote, decide

log = structlog.get_logger()

DEFAULT_IDEMPOTENT_WAIT_S = 10.0
# How long recovery leaves a freshly decided transfer to the request that decided it.
DEFAULT_COMPLETION_GRACE_S = 10.0
IDEMPOTENT_POLL_S = 0.05
# A transfer still preparing after this is aborted: by the request itself, and by recovery for a
# request that died. It bounds the prepare phase, whatever the number of participants and their waits.
DEFAULT_PREPARE_DEADLINE_S = 10.0
# How long the coordinator keeps trying to store its decision, or to read back whether it was stored,
# before it answers "outcome unknown" (PROTOCOL.md step 5).
DEFAULT_DECISION_WRITE_S = 5.0
DECISION_WRITE_PAUSE_S = 0.1
# Backoff of re-sending a decision that was not acknowledged (recovery's, and the request's own failure).
DEFAULT_RETRY_FIRST_S = 0.5
DEFAULT_RETRY_MAX_S = 30.0
# A completion lease covers every send of one attempt plus this, for the database writes around them.
COMPLETION_LEASE_MARGIN_S = 1.0
# In a batch, a decision send may wait for the batch ahead of it, then its own: two messages' timeouts.
BATCHED_SEND_TIMEOUTS = 2
# Transfers one coordinator process runs at once; beyond, 503 before anything is written. It also bounds
# every batcher's queue: no step can have more transfers waiting than there are in flight.
DEFAULT_TRANSFERS_IN_FLIGHT_MAX = 4096
# SQLSTATE class 40 (transaction rollback: deadlock_detected, serialization_failure): nothing was written.
TRANSACTION_ROLLBACK_SQLSTATE_CLASS = "40"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked for the transfer: the token's subject, and its customer when a customer asked."""

    subject: str
    customer_id: UUID | None


@dataclass
class Coordinator:
    engine: AsyncEngine
    participants: Participants
    idempotent_wait_s: float = DEFAULT_IDEMPOTENT_WAIT_S
    completion_grace_s: float = DEFAULT_COMPLETION_GRACE_S
    metrics: CoordinatorMetrics = field(default_factory=CoordinatorMetrics)
    prepare_deadline_s: float = DEFAULT_PREPARE_DEADLINE_S
    decision_write_s: float = DEFAULT_DECISION_WRITE_S
    retry_first_s: float = DEFAULT_RETRY_FIRST_S
    retry_max_s: float = DEFAULT_RETRY_MAX_S
    batch_limits: BatchLimits = field(default_factory=BatchLimits)
    transfers_in_flight_max: int = DEFAULT_TRANSFERS_IN_FLIGHT_MAX

    def __post_init__(self) -> None:
        assert self.batch_limits.items_max <= PARTICIPANT_BATCH_MAX, "a batch the participant takes"
        # Every write of the happy path is one statement, so it needs no explicit transaction.
        self.autocommit_engine = autocommit(self.engine)
        self.transfers_in_flight = 0
        self.phases = Phases(
            self.engine,
            self.participants,
            self.metrics,
            batching=self.batching,
            completion_grace_s=max(self.completion_grace_s, self.completion_lease_s),
            retry_first_s=self.retry_first_s,
            retry_max_s=self.retry_max_s,
        )
        # The accounts this coordinator's transfers lock at their participants right now (batching only).
        self.locks = Holds()
        self.batchers = Batchers.of(self.phases, self.participants.names, self.batch_limits, self.locks)
        for batcher in self.batchers.all():
            self.metrics.batch_waiting.labels(batcher.name).set_function(batcher.waiting)
            batcher.on_stall = self.metrics.batch_flights_stalled.labels(batcher.name).inc

    @property
    def batching(self) -> bool:
        return self.batch_limits.items_max > 1

    @property
    def decision_send_bound_s(self) -> float:
        """How long one decision send may take, its wait for a batch included: in a batch it may wait for
        one batch ahead of it, then take its own message's timeout."""
        return self.participants.decision_timeout_s * (BATCHED_SEND_TIMEOUTS if self.batching else 1)

    @property
    def completion_lease_s(self) -> float:
        """How long one completion attempt holds a transfer: longer than all its sends can take, so two
        replicas (or a request and recovery) never send one decision at the same time."""
        participants = min(len(self.participants.clients), PARTICIPANTS_PER_TRANSFER_MAX)
        return participants * self.decision_send_bound_s + COMPLETION_LEASE_MARGIN_S

    async def close(self) -> None:
        await self.batchers.close()

    async def transfer(self, request: TransferRequest, caller: Caller, idempotency_key: str | None) -> Transfer:
        """Run one transfer to its decision; a repeat (same body transaction_id or key) answers the first one.

        Each transfer awaits its own steps in protocol order, whatever batch each step rides in, so every
        rule of PROTOCOL.md holds per transfer. At most transfers_in_flight_max run at once: beyond it the
        answer is 503 with nothing written (which also bounds every batcher's queue).
        """
        if self.transfers_in_flight >= self.transfers_in_flight_max:
            raise ServiceUnavailableError(
                "too many transfers in flight", details={"transfers_in_flight_max": self.transfers_in_flight_max}
            )
        self.transfers_in_flight += 1
        try:
            return await self._transfer(request, caller, idempotency_key)
        finally:
            self.transfers_in_flight -= 1

    async def _transfer(self, request: TransferRequest, caller: Caller, idempotency_key: str | None) -> Transfer:
        transfer = await self._accept(request, caller, idempotency_key)
        if transfer is None:
            return await self._replay(request, caller, idempotency_key)
        structlog.contextvars.bind_contextvars(transaction_id=str(transfer.transaction_id))
        try:
            return await self._run(transfer)
        finally:  # however it ended, its locks are the participant's business (and recovery's) from here
            self.locks.release(transfer.transaction_id, _accounts_of(transfer.legs))

    async def _run(self, transfer: Transfer) -> Transfer:
        await failpoints.hit("after_accept")
        phases = self.metrics.phase_latency
        with phases.labels("prepare").time():
            decision, events = await self._prepare_all(transfer)
        await failpoints.hit("after_all_votes_before_decision")
        with phases.labels("decide").time():
            transfer = await self.record_decision(transfer.transaction_id, decision, events)
        await failpoints.hit("after_decision_before_complete")
        with phases.labels("complete").time():
            return await self._complete_after_decision(transfer)

    async def _complete_after_decision(self, transfer: Transfer) -> Transfer:
        """Once the decision is stored the client hears that decision, whatever fails in completing it:
        recovery re-sends it. A "try again" here could make a client pay twice."""
        try:
            return await self.complete(transfer)
        except Exception as error:  # the answer is the stored decision; recovery finishes what failed here
            if not database_unavailable(error):
                log.exception(
                    "completion_failed_after_decision",
                    transaction_id=str(transfer.transaction_id),
                    details={"status": transfer.status.value},
                )
            else:
                log.warning(
                    "completion_write_unanswered",
                    transaction_id=str(transfer.transaction_id),
                    details={"status": transfer.status.value, "error": type(error).__name__},
                )
            return transfer

    async def _accept(self, request: TransferRequest, caller: Caller, idempotency_key: str | None) -> Transfer | None:
        """The transfer logged `preparing` (durable before any prepare is sent), or None when its name is taken."""
        transaction_id = request.transaction_id or uuid.uuid4()
        events = [Event(EventType.ACCEPTED, details={"amount": request.amount, "requested_by": caller.subject})]
        events += [
            Event(EventType.PREPARE_SENT, participant, {"accounts": [str(leg.account_id) for leg in legs]})
            for participant, legs in self.participants.plan(request.legs)
        ]
        new = NewTransfer(transaction_id, request, events, idempotency_key, caller.subject, caller.customer_id)
        try:
            return await self.batchers.accept.submit(new)
        except Exception as error:
            # Two batches repeating each other's names in opposite orders can deadlock on the unique keys;
            # PostgreSQL aborts one statement, which wrote nothing, so its transfers are inserted again alone.
            if not _rolled_back(error):
                raise
        [accepted] = await self.phases.accept([new], new_batch(1))
        return accepted

    async def _prepare_all(self, transfer: Transfer) -> tuple[Decision, list[Event]]:
        """Prepare each participant in global order, stopping at the first NO (the outcome is then known).

        The whole phase ends by prepare_deadline_s, waits for a batch included: past it the transfer is
        aborted, as recovery would.
        """
        steps = self.participants.plan(transfer.legs)
        votes: list[Vote] = []
        events: list[Event] = []
        try:
            async with asyncio.timeout(self.prepare_deadline_s):
                for participant, legs in steps:
                    prepared = await self.batchers.prepare[participant].submit((transfer.transaction_id, legs))
                    votes.append(prepared.vote)
                    events.append(self.phases.batched(_vote_event(participant, prepared), prepared.batch))
                    if not prepared.vote.yes:
                        if prepared.vote.answered:  # a NO locks nothing there
                            self.locks.release(transfer.transaction_id, _accounts_of(legs))
                        break
                    await failpoints.hit("after_first_prepare")
        except TimeoutError:
            log.warning(
                "prepare_deadline_passed",
                transaction_id=str(transfer.transaction_id),
                details={"deadline_s": self.prepare_deadline_s, "votes": len(votes)},
            )
            return Decision(TransferStatus.ABORTED, AbortReason.PREPARE_TIMEOUT), events
        return decide(votes, planned_participants=len(steps)), events

    async def record_decision(self, transaction_id: UUID, decision: Decision, events: list[Event]) -> Transfer:
        """The commit point. If another decision was stored first (recovery, a replica), follow that one.

        A write whose reply is lost (a connection reset, the database restarting) may or may not have
        been stored: it is tried again (a compare-and-set, so a stored decision is read back, never
        overwritten) until decision_write_s has passed; then the outcome is unknown (504 with the id).
        The first write rides a batch; a retry goes alone, so one transfer's trouble never holds others.
        """
        item = (transaction_id, decision, [*events, _decision_event(decision)])
        deadline = time.monotonic() + self.decision_write_s
        retried = False
        while True:
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
                    if retried:
                        [stored] = await self.phases.decide([item], new_batch(1))
                    else:
                        stored = await self.batchers.decide.submit(item)
                return self._followed(transaction_id, decision, stored, retried=retried)
            except Exception as error:
                if not _decision_write_retryable(error):
                    raise
                if time.monotonic() + DECISION_WRITE_PAUSE_S >= deadline:
                    log.error(
                        "decision_outcome_unknown",
                        transaction_id=str(transaction_id),
                        details={"decision": decision.status.value, "error": type(error).__name__},
                    )
                    raise OutcomeUnknownError(transaction_id) from None
                log.warning(
                    "decision_write_unanswered",
                    transaction_id=str(transaction_id),
                    details={"error": type(error).__name__},
                )
            retried = True
            await asyncio.sleep(DECISION_WRITE_PAUSE_S)

    def _followed(self, transaction_id: UUID, decision: Decision, stored: Stored, *, retried: bool) -> Transfer:
        """The stored decision, ours or the one that beat ours.

        After a retry, finding our own decision stored means the lost write had been stored after all.
        """
        transfer = stored.transfer
        assert transfer.status is not TransferStatus.PREPARING, "a compare-and-set leaves a decision stored"
        won = stored.stored_now or (retried and Decision(transfer.status, transfer.reason) == decision)
        if not won:
            log.warning(
                "decision_lost_race",
                transaction_id=str(transaction_id),
                details={"ours": decision.status.value, "stored": transfer.status.value},
            )
        if won:
            self.metrics.transfers.labels(decision.status.value, decision.reason.value if decision.reason else "").inc()
        # The transfer's one info line on the hot path (STYLE.md 13): what it was, and how it ended.
        log.info(
            "transfer_decided",
            transaction_id=str(transaction_id),
            details={
                "status": transfer.status.value,
                "reason": transfer.reason and transfer.reason.value,
                "amount": str(transfer.amount),
                "source": str(transfer.source_account_id),
                "destination": str(transfer.destination_account_id),
            },
        )
        return transfer

    async def complete(self, transfer: Transfer) -> Transfer:
        """Send the decision to every participant of the transfer; mark it completed when all acknowledged.

        Participants hear the decision one after another in global order; each is told even when an
        earlier one failed to answer, because every one that was asked to prepare must learn the outcome.
        """
        assert transfer.status is not TransferStatus.PREPARING, "complete follows a decision"
        events: list[Event] = []
        failures: list[str] = []
        for index, (participant, legs) in enumerate(self.participants.plan(transfer.legs)):
            if index:
                await failpoints.hit("between_commits")
            events.append(Event(EventType.DECISION_SENT, participant, {"status": transfer.status.value}))
            sent = await self._send_decision(participant, transfer, legs)
            # Acknowledged, the lock is gone; unacknowledged, recovery re-sends while the next prepare may wait
            # at the participant (as without batching).
            self.locks.release(transfer.transaction_id, _accounts_of(legs))
            acknowledgement = (
                Event(EventType.ACKNOWLEDGED, participant, {"latency_ms": sent.latency_ms})
                if sent.failure is None
                else Event(EventType.ACK_FAILED, participant, {"error": sent.failure})
            )
            events.append(self.phases.batched(acknowledgement, sent.batch))
            failures += [sent.failure] if sent.failure else []
        events.append(Event(EventType.COMPLETED))  # logged only if the transfer is completed now
        completed = await self.batchers.complete.submit((transfer.transaction_id, events, not failures))
        if failures:
            log.warning(
                "transfer_incomplete", transaction_id=str(transfer.transaction_id), details={"failures": failures}
            )
        return completed or transfer

    async def _send_decision(self, participant: str, transfer: Transfer, legs: list[Leg]) -> Sent:
        """One participant hears the decision, in a batch, bounded by decision_send_bound_s.

        A batch that failed as a whole (an unexpected error, not a participant's answer) is sent again
        with this transfer alone, so one transfer's trouble never leaves its batch-mates unacknowledged;
        within what is left of the same bound, which the completion lease is sized by.
        """
        started = time.monotonic()
        item = (transfer.transaction_id, legs)
        sender = self.batchers.send[(participant, transfer.status)]
        try:
            async with asyncio.timeout(self.decision_send_bound_s if self.batching else None):
                try:
                    return await sender.submit(item)
                except Exception:
                    if not self.batching:
                        raise
                    log.warning(
                        "decision_batch_failed", transaction_id=str(transfer.transaction_id), participant=participant
                    )
                [sent], _ = await self.phases.send(participant, transfer.status, [item], new_batch(1))
                return sent
        except TimeoutError:
            failure = f"no acknowledgement within {self.decision_send_bound_s:g} s"
            return Sent(failure, int((time.monotonic() - started) * 1000), new_batch(1))

    async def _replay(self, request: TransferRequest, caller: Caller, idempotency_key: str | None) -> Transfer:
        """The first transfer made under this name, once it is decided; 422 if the name meant another request."""
        deadline = time.monotonic() + self.idempotent_wait_s
        while True:
            first = await self._first_named(request, caller, idempotency_key)
            if not request.repeats(first, caller.subject):
                name = "transaction_id" if first.transaction_id == request.transaction_id else "Idempotency-Key"
                raise IdempotencyKeyReusedError(
                    f"{name} already used for a different transfer",
                    details={"transaction_id": str(first.transaction_id)},
                )
            if first.status is not TransferStatus.PREPARING:
                return first
            if time.monotonic() > deadline:
                raise ConflictError(
                    "the first request with this name is still in progress",
                    details={"transaction_id": str(first.transaction_id)},
                )
            await asyncio.sleep(IDEMPOTENT_POLL_S)

    async def _first_named(self, request: TransferRequest, caller: Caller, idempotency_key: str | None) -> Transfer:
        """The stored transfer whose unique key the insert met: the body transaction_id, else the key."""
        assert request.transaction_id is not None or idempotency_key is not None, "only a named request can collide"
        async with self.autocommit_engine.connect() as connection:
            first = None
            if request.transaction_id is not None:
                first = await db.select_transfer(connection, request.transaction_id)
            if first is None and idempotency_key is not None:
                first = await db.select_by_idempotency_key(connection, caller.subject, idempotency_key)
        assert first is not None, "a transfer holds the name once the insert conflicted"
        return first


def _accounts_of(legs: Iterable[Leg]) -> list[UUID]:
    return [leg.account_id for leg in legs]


def _vote_event(participant: str, prepared: Prepared) -> Event:
    vote = prepared.vote
    return Event(
        EventType.VOTE,
        participant,
        {
            "vote": "yes" if vote.yes else ("no" if vote.answered else "none"),
            "reason": vote.reason.value if vote.reason else None,
            "latency_ms": prepared.latency_ms,
        }
        | ({"rode_with": prepared.rode_with} if prepared.rode_with else {}),
    )


def _decision_event(decision: Decision) -> Event:
    return Event(
        EventType.DECISION,
        details={"status": decision.status.value, "reason": decision.reason.value if decision.reason else None},
    )


def _decision_write_retryable(error: Exception) -> bool:
    """A decision write that may be tried again: the database did not answer, the attempt ran out of time,
    or (a batch statement meeting another's row locks) PostgreSQL broke a deadlock; a retry goes alone."""
    return database_unavailable(error) or isinstance(error, TimeoutError) or _rolled_back(error)


def _rolled_back(error: Exception) -> bool:
    """PostgreSQL rolled the statement back to break a deadlock (or a serialization failure): nothing written."""
    return (sqlstate_of(error) or "").startswith(TRANSACTION_ROLLBACK_SQLSTATE_CLASS)
