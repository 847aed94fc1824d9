"""The participant's in-doubt rules and its checks before acting, against real PostgreSQL.

In-doubt resolution asks a coordinator; here that coordinator is a small aiohttp app whose answers each
test chooses (a wrong route, an empty log, a crash), or the real transactions_service on an empty
database. Each module gets its own accounts database, because in-doubt selection reads every lock there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from uuid import UUID

import pytest
import pytest_asyncio
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import app as accounts_app
from accounts_service import participant
from accounts_service.domain import ParticipantState, VoteReason
from accounts_service.recovery import ParticipantRecoverySettings, resolve_in_doubt
from accounts_service.settings import Settings as AccountsSettings
from harness.local_postgres import LocalPostgres, free_port
from shared.auth import TRANSACTIONS_SERVICE_NAME
from shared.database import create_engine
from shared.errors import ConflictError
from shared.http_client import ServiceClient
from tests.conftest import TEST_KEYS, TEST_TOKEN_KEYS, make_database, serve
from tests.integration.test_participant import (
    account_states,
    assert_ledger_holds,
    log_rows,
    open_accounts,
    transfer_changes,
    wait_until_blocked,
)
from transactions_service import app as transactions_app
from transactions_service.settings import Settings as TransactionsSettings

# Every lock here counts as in doubt at once, and one pass looks at everything.
IMMEDIATELY_IN_DOUBT = ParticipantRecoverySettings(in_doubt_timeout_s=0.001, batch_max=100)
_AGE_LOCK = text(
    "UPDATE accounts SET locked_at = now() - make_interval(secs => :age_s) WHERE transaction_lock = :transaction_id"
)

Outcome = Callable[[UUID], web.Response]


@pytest.fixture(scope="module")
def in_doubt_db_url(postgres: LocalPostgres) -> str:
    return make_database(postgres, "accounts_service")


@pytest.fixture(scope="module")
def empty_coordinator_db_url(postgres: LocalPostgres) -> str:
    return make_database(postgres, "transactions_service")


@pytest_asyncio.fixture(loop_scope="session")
async def engine(in_doubt_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(in_doubt_db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session", autouse=True)
async def no_locks_left(engine: AsyncEngine) -> AsyncIterator[None]:
    """Each test starts and ends with nothing in doubt, so one test's lock never answers for another's."""
    yield
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE accounts SET transaction_lock = NULL, pending_change = NULL, "
                "locked_at = NULL WHERE transaction_lock IS NOT NULL"
            )
        )


class FakeCoordinator:
    """An HTTP peer answering GET /transactions/{id}/outcome as the test says; it records what it was asked."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.asked: list[UUID] = []
        self.app = web.Application()
        self.app.router.add_get("/transactions/{transaction_id}/outcome", self._outcome)

    async def _outcome(self, request: web.Request) -> web.Response:
        transaction_id = UUID(request.match_info["transaction_id"])
        self.asked.append(transaction_id)
        return self.outcome(transaction_id)


def outcome_is(status: str) -> Outcome:
    return lambda transaction_id: web.json_response(
        {"success": True, "data": {"transaction_id": str(transaction_id), "status": status}}
    )


def nowhere() -> str:
    """A URL nothing listens on: a peer that is down."""
    return f"http://127.0.0.1:{free_port()}"


def coordinator_client(url: str) -> ServiceClient:
    return ServiceClient(
        url, jwt_secret=TEST_TOKEN_KEYS, caller="accounts-service", audience=TRANSACTIONS_SERVICE_NAME, timeout_s=2
    )


async def resolve_with(
    engine: AsyncEngine, coordinator: FakeCoordinator, settings: ParticipantRecoverySettings = IMMEDIATELY_IN_DOUBT
) -> int:
    async with serve(coordinator.app) as server:
        client = coordinator_client(str(server.make_url("")))
        try:
            return await resolve_in_doubt(engine, client, settings)
        finally:
            await client.close()


async def prepared_transfer(engine: AsyncEngine, amount: int = 30) -> tuple[UUID, UUID, UUID]:
    source, destination = await open_accounts(engine, 100, 100)
    transaction_id = uuid.uuid4()
    vote = await participant.prepare(engine, transaction_id, transfer_changes(source, destination, amount))
    assert vote.yes
    return transaction_id, source, destination


async def locked_by(engine: AsyncEngine, *account_ids: UUID) -> set[UUID | None]:
    return {state["transaction_lock"] for state in (await account_states(engine, list(account_ids))).values()}


# --- item 3: presume abort only on a positive "no such transfer" naming the transaction ---------------------------


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            lambda transaction_id: web.json_response(
                {"success": False, "error": {"code": "NOT_FOUND", "message": "Not Found"}}, status=404
            ),
            id="route-404",
        ),
        pytest.param(lambda transaction_id: web.Response(status=404, text="404: Not Found"), id="plain-text-404"),
        pytest.param(
            lambda transaction_id: web.json_response(
                {
                    "success": False,
                    "error": {
                        "code": "TRANSFER_NOT_FOUND",
                        "message": "no such transfer",
                        "details": {"transaction_id": str(uuid.uuid4())},
                    },
                },
                status=404,
            ),
            id="404-naming-another-transfer",
        ),
        pytest.param(
            lambda transaction_id: web.json_response(
                {"success": False, "error": {"code": "INTERNAL_ERROR"}}, status=500
            ),
            id="500",
        ),
        pytest.param(outcome_is("preparing"), id="still-preparing"),
    ],
)
async def test_a_lock_stays_when_the_answer_is_not_a_positive_no_record(engine, answer):
    transaction_id, source, destination = await prepared_transfer(engine)

    resolved = await resolve_with(engine, FakeCoordinator(answer))

    assert resolved == 0
    assert await locked_by(engine, source, destination) == {transaction_id}
    assert {row["state"] for row in (await log_rows(engine, transaction_id)).values()} == {ParticipantState.PREPARED}


async def test_a_lock_stays_when_the_coordinator_url_is_another_service(engine, in_doubt_db_url):
    """TRANSACTIONS_SERVICE_URL pointing at an accounts service: its 404 for an unknown route is no answer."""
    transaction_id, source, destination = await prepared_transfer(engine)
    wrong_peer = accounts_app.create_app(
        AccountsSettings(
            database_url=in_doubt_db_url,
            **TEST_KEYS,
            customer_service_url=nowhere(),
            transactions_service_url=nowhere(),
        )
    )
    async with serve(wrong_peer) as server:
        client = coordinator_client(str(server.make_url("")))
        try:
            resolved = await resolve_in_doubt(engine, client, IMMEDIATELY_IN_DOUBT)
        finally:
            await client.close()

    assert resolved == 0
    assert await locked_by(engine, source, destination) == {transaction_id}


async def test_a_lock_stays_while_the_coordinator_is_unreachable(engine):
    transaction_id, source, destination = await prepared_transfer(engine)
    client = coordinator_client(nowhere())
    try:
        resolved = await resolve_in_doubt(engine, client, IMMEDIATELY_IN_DOUBT)
    finally:
        await client.close()

    assert resolved == 0
    assert await locked_by(engine, source, destination) == {transaction_id}


async def test_the_real_coordinator_with_no_record_is_a_presumed_abort(engine, empty_coordinator_db_url):
    """The coordinator's own 404 names the transfer (TRANSFER_NOT_FOUND): that, and only that, releases."""
    transaction_id, source, destination = await prepared_transfer(engine)
    coordinator = transactions_app.create_app(
        TransactionsSettings(database_url=empty_coordinator_db_url, **TEST_KEYS, accounts_service_url=nowhere())
    )
    async with serve(coordinator) as server:
        client = coordinator_client(str(server.make_url("")))
        try:
            resolved = await resolve_in_doubt(engine, client, IMMEDIATELY_IN_DOUBT)
        finally:
            await client.close()

    assert resolved == 1
    assert await locked_by(engine, source, destination) == {None}
    assert {row["state"] for row in (await log_rows(engine, transaction_id)).values()} == {ParticipantState.ABORTED}
    assert (await account_states(engine, [source]))[source]["balance"] == 100


async def test_a_committed_outcome_is_applied(engine):
    transaction_id, source, destination = await prepared_transfer(engine)

    assert await resolve_with(engine, FakeCoordinator(outcome_is("committed"))) == 1

    states = await account_states(engine, [source, destination])
    assert [states[source]["balance"], states[destination]["balance"]] == [Decimal(70), Decimal(130)]
    await assert_ledger_holds(engine, [source, destination])


# --- item 5: one failing transfer never stops a pass, and the oldest lock is asked about first ------------------


async def test_one_failing_transfer_does_not_stop_the_pass(engine):
    """A transfer whose commit fails (a prepared leg without its lock: PB500) is logged; the next one resolves."""
    broken, broken_source, _ = await prepared_transfer(engine)
    healthy, healthy_source, healthy_destination = await prepared_transfer(engine)
    async with engine.begin() as connection:
        await connection.execute(_AGE_LOCK, {"transaction_id": broken, "age_s": 60})
        await connection.execute(
            text(
                "UPDATE accounts SET transaction_lock = NULL, pending_change = NULL, "
                "locked_at = NULL "
                "WHERE account_id = :id"
            ),
            {"id": broken_source},
        )

    resolved = await resolve_with(engine, FakeCoordinator(outcome_is("committed")))

    assert resolved == 1
    assert await locked_by(engine, healthy_source, healthy_destination) == {None}
    assert (await account_states(engine, [healthy_source]))[healthy_source]["balance"] == 70


async def test_the_oldest_lock_is_asked_about_first(engine):
    """With a batch of one, the transfer locked longest comes first, whatever its id."""
    transfers = sorted([await prepared_transfer(engine) for _ in range(4)])
    # The oldest has the largest id, so an order by id (what DISTINCT tends to give) would pick the youngest.
    ages = {transaction_id: 10 * (index + 1) for index, (transaction_id, _, _) in enumerate(transfers)}
    async with engine.begin() as connection:
        for transaction_id, age_s in ages.items():
            await connection.execute(_AGE_LOCK, {"transaction_id": transaction_id, "age_s": age_s})
    coordinator = FakeCoordinator(outcome_is("preparing"))
    one_at_a_time = ParticipantRecoverySettings(in_doubt_timeout_s=0.001, batch_max=1)

    for _ in range(3):
        await resolve_with(engine, coordinator, one_at_a_time)

    oldest = max(ages, key=ages.__getitem__)
    assert coordinator.asked == [oldest] * 3


# --- item 6: a repeated prepare of a transfer already committed here votes YES -------------------------------------


async def test_a_repeated_prepare_that_meets_the_commit_of_its_first_votes_yes(engine, in_doubt_db_url):
    """The repeat's snapshot predates the first prepare's log row; it meets that row committed (PB001): YES."""
    source, destination = await open_accounts(engine, 100, 50)
    first_account = min(source, destination)
    transaction_id = uuid.uuid4()
    changes = transfer_changes(source, destination, 30)
    holder_engine = create_engine(in_doubt_db_url, pool_size=1)
    try:
        async with holder_engine.connect() as holder:
            await holder.execute(
                text("SELECT 1 FROM accounts WHERE account_id = :id FOR UPDATE"), {"id": first_account}
            )
            repeat = asyncio.create_task(participant.prepare(engine, transaction_id, changes))
            await wait_until_blocked(engine, "%SET transaction_lock = %")
            # Meanwhile the first prepare and its commit went through (written here as they leave the rows).
            for change in changes:
                await holder.execute(
                    text(
                        "INSERT INTO participant_log (transaction_id, account_id, state, change, kind) "
                        "VALUES (:transaction_id, :account_id, 'committed', :change, 'transfer')"
                    ),
                    {"transaction_id": transaction_id, "account_id": change.account_id, "change": change.change},
                )
                await holder.execute(
                    text("UPDATE accounts SET balance = balance + :change WHERE account_id = :id"),
                    {"change": change.change, "id": change.account_id},
                )
            await holder.commit()
        vote = await repeat
    finally:
        await holder_engine.dispose()

    assert vote.yes, vote
    assert await locked_by(engine, source, destination) == {None}
    assert {row["state"] for row in (await log_rows(engine, transaction_id)).values()} == {ParticipantState.COMMITTED}


async def test_a_prepare_that_meets_an_abort_still_votes_already_aborted(engine, in_doubt_db_url):
    source, destination = await open_accounts(engine, 100, 50)
    transaction_id = uuid.uuid4()
    changes = transfer_changes(source, destination, 30)
    holder_engine = create_engine(in_doubt_db_url, pool_size=1)
    try:
        async with holder_engine.connect() as holder:
            await holder.execute(
                text("SELECT 1 FROM accounts WHERE account_id = :id FOR UPDATE"), {"id": min(source, destination)}
            )
            late = asyncio.create_task(participant.prepare(engine, transaction_id, changes))
            await wait_until_blocked(engine, "%SET transaction_lock = %")
            await participant.abort(engine, transaction_id, changes)
            await holder.rollback()
        vote = await late
    finally:
        await holder_engine.dispose()

    assert vote.reason is VoteReason.ALREADY_ABORTED
    assert await locked_by(engine, source, destination) == {None}


# --- item 7: a contradiction is checked before acting on it --------------------------------------------------------


async def test_commit_of_a_transfer_aborted_here_applies_nothing(engine):
    """One leg aborted, the other still prepared: the commit is refused before the prepared leg is applied."""
    transaction_id, source, destination = await prepared_transfer(engine)
    changes = {change.account_id: change for change in transfer_changes(source, destination, 30)}
    await participant.abort(engine, transaction_id, [changes[source]])

    with pytest.raises(ConflictError):
        await participant.commit(engine, transaction_id)

    states = await account_states(engine, [source, destination])
    assert [states[source]["balance"], states[destination]["balance"]] == [Decimal(100), Decimal(100)]
    assert states[destination]["transaction_lock"] == transaction_id
    assert (await log_rows(engine, transaction_id))[destination]["state"] == ParticipantState.PREPARED
    await assert_ledger_holds(engine, [source, destination])


async def test_abort_of_a_transfer_committed_here_releases_nothing(engine):
    """One leg committed, the other still prepared: the abort is refused before the prepared leg is released."""
    transaction_id, source, destination = await prepared_transfer(engine)
    await participant.commit(engine, transaction_id, [source])

    with pytest.raises(ConflictError):
        await participant.abort(engine, transaction_id, transfer_changes(source, destination, 30))

    states = await account_states(engine, [source, destination])
    assert states[destination]["transaction_lock"] == transaction_id
    rows = await log_rows(engine, transaction_id)
    assert [rows[source]["state"], rows[destination]["state"]] == [
        ParticipantState.COMMITTED,
        ParticipantState.PREPARED,
    ]
    await assert_ledger_holds(engine, [source, destination])
