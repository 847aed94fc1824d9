"""The coordinator (transactions_service) against a real PostgreSQL database, with participants it can fool.

The participant is a small aiohttp app that votes, acknowledges, stalls or fails as each test says; the
coordinator log is real. Database faults are real too: a test trigger on this module's own database
terminates the very backend that writes a chosen transfer's decision or completion, which is what
`pg_terminate_backend` or a PostgreSQL crash does to a coordinator mid-statement.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

import pytest
import pytest_asyncio
import structlog
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.local_postgres import LocalPostgres
from shared.auth import ACCOUNTS_SERVICE_NAME
from shared.database import create_engine
from shared.hot_sql import raw_connection
from shared.http_client import ServiceClient
from tests.conftest import TEST_KEYS, TEST_TOKEN_KEYS, bearer, make_database, serve
from transactions_service import app as transactions_app
from transactions_service import db
from transactions_service.coordinator import Caller, Coordinator
from transactions_service.domain import Event, TransferRequest
from transactions_service.participants import ACCOUNTS_PARTICIPANT, Participants
from transactions_service.protocol import AbortReason, Decision, EventType, TransferStatus
from transactions_service.recovery import RecoverySettings, recover_once
from transactions_service.settings import Settings

CALLER = Caller("teller-under-test", None)
COMMITTED = Decision(TransferStatus.COMMITTED)
# The decision lease under test: sends take longer than the old 0.5 s first lease, less than the timeout.
SLOW_ACK_S = 0.8
DECISION_TIMEOUT_S = 1.5

# Fault injection: a transfer whose source account is listed in test_faults has its decision (phase
# 'decide') or its completion (phase 'complete') killed `kills` times, counted by a sequence because a
# sequence is not rolled back with the statement it kills.
_FAULTS_DDL = [
    """
    CREATE TABLE IF NOT EXISTS test_faults (source_account_id UUID PRIMARY KEY, phase TEXT NOT NULL,
                                            counter TEXT NOT NULL, kills INTEGER NOT NULL)""",
    """
    CREATE OR REPLACE FUNCTION test_kill_writer() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE fault test_faults;
    BEGIN
        SELECT * INTO fault FROM test_faults WHERE source_account_id = NEW.source_account_id;
        IF FOUND AND ((fault.phase = 'decide' AND OLD.status = 'preparing' AND NEW.status <> 'preparing')
                      OR (fault.phase = 'complete' AND OLD.completed_at IS NULL AND NEW.completed_at IS NOT NULL))
           AND nextval(fault.counter) <= fault.kills THEN
            PERFORM pg_terminate_backend(pg_backend_pid());
            PERFORM pg_sleep(5);  -- the termination lands here; nothing after it runs
        END IF;
        RETURN NEW;
    END $$""",
    """
    CREATE OR REPLACE TRIGGER test_kill_writer BEFORE UPDATE ON transactions
    FOR EACH ROW EXECUTE FUNCTION test_kill_writer()""",
]


@pytest.fixture(scope="module")
def coordinator_db_url(postgres: LocalPostgres) -> str:
    """This module's own coordinator database: recovery here sees only this module's transfers."""
    return make_database(postgres, "transactions_service")


@pytest_asyncio.fixture(loop_scope="session")
async def engine(coordinator_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(coordinator_db_url)
    async with engine.begin() as connection:
        for statement in _FAULTS_DDL:
            await connection.execute(text(statement))
    try:
        yield engine
    finally:
        await engine.dispose()


async def plant_fault(engine: AsyncEngine, source: UUID, phase: str, kills: int) -> None:
    counter = f"test_kills_{uuid.uuid4().hex}"
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE SEQUENCE {counter}"))
        await connection.execute(
            text("INSERT INTO test_faults VALUES (:source, :phase, :counter, :kills)"),
            {"source": source, "phase": phase, "counter": counter, "kills": kills},
        )


async def clear_fault(engine: AsyncEngine, source: UUID) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM test_faults WHERE source_account_id = :source"), {"source": source})


@dataclass
class FakeParticipant:
    """An accounts service that votes YES and acknowledges, after the pauses a test sets; it counts what it hears."""

    prepare_pause_s: float = 0.0
    decision_pause_s: float = 0.0
    failing_decisions: set[UUID] = field(default_factory=set)
    prepares: list[UUID] = field(default_factory=list)
    decisions: list[tuple[str, UUID]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    heard_decision: asyncio.Event = field(default_factory=asyncio.Event)

    no_votes: dict[UUID, str] = field(default_factory=dict)  # transfers it votes NO on, with the reason
    prepare_messages: list[list[UUID]] = field(default_factory=list)  # every prepare message's transfers
    riders_unprepared: bool = False  # answer a decision batch's riders with no votes (its database down)
    refused_prepares: bool = False  # answer every prepare 500, as if it failed after locking the accounts
    deferred_riders: bool = False  # answer a decision batch's riders "deferred", as if they met another lock
    deferred: list[UUID] = field(default_factory=list)  # the riders it deferred
    heard_in_order: list[tuple[str, UUID]] = field(default_factory=list)  # ("prepare" | a decision path, id)
    held_prepares: set[UUID] = field(default_factory=set)  # a prepare message carrying one waits for the gate
    prepare_gate: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2pc/prepare", self._prepare)
        app.router.add_post("/2pc/commit", self._decision)
        app.router.add_post("/2pc/abort", self._decision)
        # The batch routes (accounts_service/api_schema.py): one vote (or result) per entry, in order.
        app.router.add_post("/2pc/prepare-batch", self._prepare_batch)
        app.router.add_post("/2pc/commit-batch", self._decision_batch)
        app.router.add_post("/2pc/abort-batch", self._decision_batch)
        return app

    def _vote(self, transaction_id: UUID) -> dict:
        self.prepares.append(transaction_id)
        self.heard_in_order.append(("prepare", transaction_id))
        reason = self.no_votes.get(transaction_id)
        return {"vote": "no", "reason": reason} if reason else {"vote": "yes", "reason": None}

    async def _prepare(self, request: web.Request) -> web.Response:
        transaction_id = UUID((await request.json())["transaction_id"])
        self.prepare_messages.append([transaction_id])
        await asyncio.sleep(self.prepare_pause_s)
        if self.refused_prepares:
            return _internal_error()
        return web.json_response({"success": True, "data": self._vote(transaction_id)})

    async def _prepare_batch(self, request: web.Request) -> web.Response:
        transaction_ids = [UUID(entry["transaction_id"]) for entry in (await request.json())["transfers"]]
        self.prepare_messages.append(transaction_ids)
        await asyncio.sleep(self.prepare_pause_s)
        if self.held_prepares.intersection(transaction_ids):
            await self.prepare_gate.wait()
        if self.refused_prepares:
            return _internal_error()
        votes = [{"transaction_id": str(one), **self._vote(one)} for one in transaction_ids]
        return web.json_response({"success": True, "data": {"votes": votes}})

    async def _hear(self, path: str, transaction_ids: list[UUID]) -> None:
        self.decisions += [(path.removesuffix("-batch"), transaction_id) for transaction_id in transaction_ids]
        self.heard_in_order += [(path.removesuffix("-batch"), transaction_id) for transaction_id in transaction_ids]
        self.heard_decision.set()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.decision_pause_s)
        finally:
            self.in_flight -= 1

    async def _decision(self, request: web.Request) -> web.Response:
        transaction_id = UUID((await request.json())["transaction_id"])
        await self._hear(request.path, [transaction_id])
        if transaction_id in self.failing_decisions:
            return web.json_response({"success": False, "error": {"code": "INTERNAL_ERROR"}}, status=500)
        return web.json_response({"success": True, "data": []})

    async def _decision_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        transaction_ids = [UUID(entry["transaction_id"]) for entry in body["transfers"]]
        await self._hear(request.path, transaction_ids)
        riders = [UUID(entry["transaction_id"]) for entry in body.get("prepare", [])]
        if riders and self.riders_unprepared:
            riders = []
        if riders:  # prepares riding the decisions: heard after them
            self.prepare_messages.append(riders)
        refused = {"code": "INTERNAL_ERROR", "message": "refused by the test"}
        results = [
            {"transaction_id": str(one), "acknowledged": one not in self.failing_decisions, "error": None}
            if one not in self.failing_decisions
            else {"transaction_id": str(one), "acknowledged": False, "error": refused}
            for one in transaction_ids
        ]
        if self.deferred_riders:
            self.deferred += riders
            votes = [{"transaction_id": str(one), "vote": "deferred", "reason": None} for one in riders]
        else:
            votes = [{"transaction_id": str(one), **self._vote(one)} for one in riders]
        return web.json_response({"success": True, "data": {"results": results} | ({"votes": votes} if riders else {})})


def _internal_error() -> web.Response:
    return web.json_response({"success": False, "error": {"code": "INTERNAL_ERROR", "message": "the test"}}, status=500)


@asynccontextmanager
async def participant_url(fake: FakeParticipant) -> AsyncIterator[str]:
    async with serve(fake.app()) as server:
        yield str(server.make_url("")).rstrip("/")


@asynccontextmanager
async def coordinator(engine: AsyncEngine, url: str, **options) -> AsyncIterator[Coordinator]:
    client = ServiceClient(
        url, jwt_secret=TEST_TOKEN_KEYS, caller="transactions-service", audience=ACCOUNTS_SERVICE_NAME, timeout_s=5
    )
    participants = options.pop("participants_class", Participants)(
        {ACCOUNTS_PARTICIPANT: client},
        prepare_timeout_s=2,
        decision_timeout_s=options.pop("decision_timeout_s", DECISION_TIMEOUT_S),
    )
    ours = Coordinator(engine, participants, **options)
    try:
        yield ours
    finally:
        await ours.close()
        await client.close()


def new_request(amount: str = "10") -> TransferRequest:
    return TransferRequest(uuid.uuid4(), uuid.uuid4(), Decimal(amount))


async def stored(engine: AsyncEngine, transaction_id: UUID):
    async with engine.connect() as connection:
        return await db.select_transfer(connection, transaction_id)


async def accepted(engine: AsyncEngine, request: TransferRequest | None = None, key: str | None = None):
    """A transfer written `preparing`, as the accept step leaves it."""
    async with raw_connection(engine) as connection:
        return await db.insert_transfer(
            connection,
            uuid.uuid4(),
            request or new_request(),
            [Event(EventType.ACCEPTED)],
            idempotency_key=key,
            requested_by=CALLER.subject,
            requested_by_customer_id=None,
        )


async def decided_unfinished(engine: AsyncEngine, decision: Decision = COMMITTED):
    """A decided transfer whose decision recovery may re-send now."""
    transfer = await accepted(engine)
    async with raw_connection(engine) as raw:
        await db.store_decision(raw, transfer.transaction_id, decision, [], completion_grace_s=0)
    async with engine.connect() as connection:
        await connection.execute(
            text("UPDATE transactions SET next_attempt_at = now() - interval '1 second' WHERE transaction_id = :id"),
            {"id": transfer.transaction_id},
        )
        await connection.commit()
    return transfer


RECOVERY = RecoverySettings(interval_s=0.1, batch_max=100, prepare_deadline_s=3600, retry_first_s=0.2, retry_max_s=30)


async def nothing_left_to_complete(engine: AsyncEngine) -> None:
    """Mark every earlier test's unfinished transfer completed, so a recovery pass here sees only this test's."""
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE transactions SET completed_at = now() WHERE completed_at IS NULL AND status <> 'preparing'")
        )


# --- the log's own rules: CHECK constraints and triggers -----------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE transactions SET status = 'aborted', reason = 'prepare_timeout' WHERE transaction_id = :id",
        "UPDATE transactions SET status = 'preparing', decided_at = NULL WHERE transaction_id = :id",
    ],
    ids=["committed-to-aborted", "committed-to-preparing"],
)
async def test_a_stored_decision_never_changes(engine, statement):
    transfer = await decided_unfinished(engine)
    with pytest.raises(DBAPIError):
        async with engine.begin() as connection:
            await connection.execute(text(statement), {"id": transfer.transaction_id})
    assert (await stored(engine, transfer.transaction_id)).status is TransferStatus.COMMITTED


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE transaction_events SET event_type = 'vote' WHERE transaction_id = :id",
        "DELETE FROM transaction_events WHERE transaction_id = :id",
    ],
    ids=["update", "delete"],
)
async def test_the_event_log_is_append_only(engine, statement):
    transfer = await accepted(engine)
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as connection:
            await connection.execute(text(statement), {"id": transfer.transaction_id})


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE transactions SET status = 'aborted', decided_at = now() WHERE transaction_id = :id",  # no reason
        "UPDATE transactions SET status = 'committed', reason = 'prepare_timeout', decided_at = now() "
        "WHERE transaction_id = :id",  # a commit with a reason
        "UPDATE transactions SET status = 'committed' WHERE transaction_id = :id",  # decided without decided_at
        "UPDATE transactions SET completed_at = now() WHERE transaction_id = :id",  # completed before decided
        "UPDATE transactions SET amount = 0 WHERE transaction_id = :id",
        "UPDATE transactions SET destination_account_id = source_account_id WHERE transaction_id = :id",
    ],
    ids=[
        "abort-without-reason",
        "commit-with-reason",
        "decided-without-time",
        "completed-undecided",
        "zero-amount",
        "same-accounts",
    ],
)
async def test_check_constraints_refuse_an_inconsistent_row(engine, statement):
    transfer = await accepted(engine)
    with pytest.raises(DBAPIError, match="check constraint"):
        async with engine.begin() as connection:
            await connection.execute(text(statement), {"id": transfer.transaction_id})


# --- the queries: compare-and-set decisions, presumed abort, the race between them --------------------------------


async def test_only_one_decision_wins_the_compare_and_set(engine):
    transfer = await accepted(engine)
    async with raw_connection(engine) as connection:
        first = await db.store_decision(connection, transfer.transaction_id, COMMITTED, [], completion_grace_s=1)
        second = await db.store_decision(
            connection,
            transfer.transaction_id,
            Decision(TransferStatus.ABORTED, AbortReason.PREPARE_TIMEOUT),
            [],
            completion_grace_s=1,
        )
    assert first is not None and first.status is TransferStatus.COMMITTED
    assert second is None
    assert (await stored(engine, transfer.transaction_id)).status is TransferStatus.COMMITTED


async def test_a_decision_that_loses_to_presumed_abort_follows_the_stored_one(engine):
    """decision_lost_race: recovery aborted the orphan first; the request's commit follows the abort."""
    async with participant_url(FakeParticipant()) as url, coordinator(engine, url) as ours:
        transfer = await accepted(engine)
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE transactions SET created_at = now() - interval '1 hour' WHERE transaction_id = :id"),
                {"id": transfer.transaction_id},
            )
            orphans = await db.abort_orphans(
                connection, deadline_s=60, reason=AbortReason.PREPARE_TIMEOUT.value, limit=1000
            )
        assert transfer.transaction_id in {orphan.transaction_id for orphan in orphans}
        with structlog.testing.capture_logs() as logs:
            followed = await ours.record_decision(transfer.transaction_id, COMMITTED, [])

    assert followed.status is TransferStatus.ABORTED
    assert followed.reason is AbortReason.PREPARE_TIMEOUT
    assert [entry["details"] for entry in logs if entry["event"] == "decision_lost_race"] == [
        {"ours": "committed", "stored": "aborted"}
    ]


async def test_an_idempotent_replay_while_the_first_is_in_flight_answers_the_first(engine):
    fake = FakeParticipant(prepare_pause_s=0.5)
    request = new_request()
    async with participant_url(fake) as url, coordinator(engine, url) as ours:
        first, replay = await asyncio.gather(
            ours.transfer(request, CALLER, "key-in-flight"), ours.transfer(request, CALLER, "key-in-flight")
        )

    assert first.transaction_id == replay.transaction_id
    assert first.status is replay.status is TransferStatus.COMMITTED
    assert fake.prepares == [first.transaction_id]


# --- item 1: the completion backoff never overflows -----------------------------------------------------------------


async def test_a_transfer_retried_two_thousand_times_is_still_claimed_and_backed_off(engine):
    await nothing_left_to_complete(engine)
    transfer = await decided_unfinished(engine)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE transactions SET completion_attempts = 2000 WHERE transaction_id = :id"),
            {"id": transfer.transaction_id},
        )
    fake = FakeParticipant(failing_decisions={transfer.transaction_id})

    async with participant_url(fake) as url, coordinator(engine, url) as ours:
        result = await recover_once(ours, RECOVERY)

    assert result.attempted == 1 and result.completed == 0
    again = await stored(engine, transfer.transaction_id)
    assert again.completion_attempts == 2001
    async with engine.connect() as connection:
        wait_s = (
            await connection.execute(
                text("SELECT extract(epoch FROM next_attempt_at - now()) FROM transactions WHERE transaction_id = :id"),
                {"id": transfer.transaction_id},
            )
        ).scalar_one()
    assert RECOVERY.retry_max_s - 2 < wait_s <= RECOVERY.retry_max_s


# --- item 4: the completion lease covers a send, so two passes never send one decision at once ----------------------


async def test_two_recovery_passes_never_send_the_same_decision_at_once(engine, coordinator_db_url):
    await nothing_left_to_complete(engine)
    transfer = await decided_unfinished(engine)
    fake = FakeParticipant(decision_pause_s=SLOW_ACK_S)
    other_engine = create_engine(coordinator_db_url)
    try:
        async with (
            participant_url(fake) as url,
            coordinator(engine, url) as first,
            coordinator(other_engine, url) as second,
        ):
            first_pass = asyncio.create_task(recover_once(first, RECOVERY))
            await asyncio.wait_for(fake.heard_decision.wait(), 5)
            await asyncio.sleep(RECOVERY.retry_first_s * 2)  # past the old first lease, inside the send
            second_result = await recover_once(second, RECOVERY)
            first_result = await first_pass
    finally:
        await other_engine.dispose()

    assert fake.decisions == [("/2pc/commit", transfer.transaction_id)]
    assert fake.most_in_flight == 1
    assert (first_result.attempted, first_result.completed, second_result.attempted) == (1, 1, 0)


async def test_two_concurrent_recovery_passes_share_the_work_and_finish_it(engine, coordinator_db_url):
    await nothing_left_to_complete(engine)
    transfers = [await decided_unfinished(engine) for _ in range(20)]
    fake = FakeParticipant(decision_pause_s=0.05)
    other_engine = create_engine(coordinator_db_url)
    try:
        async with (
            participant_url(fake) as url,
            coordinator(engine, url) as first,
            coordinator(other_engine, url) as second,
        ):
            results = await asyncio.gather(recover_once(first, RECOVERY), recover_once(second, RECOVERY))
    finally:
        await other_engine.dispose()

    assert sorted(transaction_id for _path, transaction_id in fake.decisions) == sorted(
        transfer.transaction_id for transfer in transfers
    )
    assert sum(result.completed for result in results) == len(transfers)
    for transfer in transfers:
        assert (await stored(engine, transfer.transaction_id)).completed


# --- item 5: one failing transfer never stops the coordinator's pass ------------------------------------------------


class ExplodingParticipants(Participants):
    """Participants whose decision to one transfer fails with an unexpected error (a bug, say)."""

    exploding: UUID | None = None

    async def send_decision(self, participant, transaction_id, status, legs):
        if transaction_id == self.exploding:
            raise RuntimeError("unexpected failure while sending a decision")
        return await super().send_decision(participant, transaction_id, status, legs)

    async def send_decision_batch(self, participant, status, transfers, prepares=None):
        if any(transaction_id == self.exploding for transaction_id, _legs in transfers):
            raise RuntimeError("unexpected failure while sending a batch of decisions")
        return await super().send_decision_batch(participant, status, transfers, prepares)


async def test_one_transfer_that_fails_does_not_stop_the_recovery_pass(engine):
    await nothing_left_to_complete(engine)
    exploding, healthy = await decided_unfinished(engine), await decided_unfinished(engine)
    async with participant_url(FakeParticipant()) as url:
        client = ServiceClient(
            url, jwt_secret=TEST_TOKEN_KEYS, caller="transactions-service", audience=ACCOUNTS_SERVICE_NAME
        )
        participants = ExplodingParticipants({ACCOUNTS_PARTICIPANT: client}, decision_timeout_s=DECISION_TIMEOUT_S)
        participants.exploding = exploding.transaction_id
        try:
            result = await recover_once(Coordinator(engine, participants), RECOVERY)
        finally:
            await client.close()

    assert (result.attempted, result.completed) == (2, 1)
    assert (await stored(engine, healthy.transaction_id)).completed
    assert not (await stored(engine, exploding.transaction_id)).completed


# --- item 8: one transfer has an overall deadline --------------------------------------------------------------------


async def test_a_prepare_phase_past_its_deadline_aborts_the_transfer(engine):
    fake = FakeParticipant(prepare_pause_s=1.5)  # within the prepare timeout (2 s), past the deadline
    async with participant_url(fake) as url, coordinator(engine, url, prepare_deadline_s=0.5) as ours:
        started = time.monotonic()
        transfer = await ours.transfer(new_request(), CALLER, None)
        elapsed_s = time.monotonic() - started

    assert transfer.status is TransferStatus.ABORTED
    assert transfer.reason is AbortReason.PREPARE_TIMEOUT
    assert elapsed_s < 1.4
    assert ("/2pc/abort", transfer.transaction_id) in fake.decisions


# --- item 2: after the commit point the answer is the decision, or "outcome unknown", never "try again" -------------


@asynccontextmanager
async def transactions_service(coordinator_db_url: str, url: str, **settings) -> AsyncIterator:
    app = transactions_app.create_app(
        Settings(database_url=coordinator_db_url, **TEST_KEYS, accounts_service_url=url, **settings)
    )
    async with serve(app) as client:
        yield client


async def post_transfer(client, request: TransferRequest):
    response = await client.post(
        "/transfers",
        json={
            "source_account_id": str(request.source_account_id),
            "destination_account_id": str(request.destination_account_id),
            "amount": str(request.amount),
        },
        headers=bearer("admin"),
    )
    return response, await response.json()


async def test_a_killed_completion_write_still_answers_the_decision(engine, coordinator_db_url):
    request = new_request()
    await plant_fault(engine, request.source_account_id, "complete", kills=1)
    async with participant_url(FakeParticipant()) as url, transactions_service(coordinator_db_url, url) as client:
        response, body = await post_transfer(client, request)

    assert response.status == 200, body
    assert body["data"]["status"] == "committed"
    assert body["data"]["completed"] is False  # recovery completes it
    assert (await stored(engine, UUID(body["data"]["transaction_id"]))).status is TransferStatus.COMMITTED


async def test_a_killed_decision_write_is_read_back_and_answered(engine, coordinator_db_url):
    request = new_request()
    await plant_fault(engine, request.source_account_id, "decide", kills=1)
    async with participant_url(FakeParticipant()) as url, transactions_service(coordinator_db_url, url) as client:
        response, body = await post_transfer(client, request)

    assert response.status == 200, body
    assert body["data"]["status"] == "committed"
    assert (await stored(engine, UUID(body["data"]["transaction_id"]))).status is TransferStatus.COMMITTED


async def test_a_decision_that_cannot_be_stored_or_read_back_answers_outcome_unknown(engine, coordinator_db_url):
    request = new_request()
    await plant_fault(engine, request.source_account_id, "decide", kills=1000)
    try:
        async with (
            participant_url(FakeParticipant()) as url,
            transactions_service(coordinator_db_url, url, decision_write_s=1.0) as client,
        ):
            started = time.monotonic()
            response, body = await post_transfer(client, request)
            elapsed_s = time.monotonic() - started
    finally:
        await clear_fault(engine, request.source_account_id)

    assert response.status == 504, body
    assert body["error"]["code"] == "OUTCOME_UNKNOWN"
    transaction_id = body["error"]["details"]["transaction_id"]
    assert response.headers["Location"] == f"/transfers/status/{transaction_id}"
    assert "Retry-After" not in response.headers
    assert elapsed_s < 4
    assert (await stored(engine, UUID(transaction_id))).status is TransferStatus.PREPARING  # recovery decides it
