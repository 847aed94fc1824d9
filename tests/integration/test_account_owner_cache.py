"""The coordinator remembers an account's owner: a customer's second transfer from an account asks nobody.

The coordinator and the accounts service are the real apps on real databases; the accounts service
counts the accounts its ownership look-ups (POST /accounts/owners) name.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest_asyncio
from aiohttp import web

from accounts_service import service as accounts
from accounts_service.app import create_app as create_accounts_app
from accounts_service.settings import Settings as AccountsSettings
from shared.database import create_engine
from tests.conftest import TEST_KEYS, bearer, serve
from transactions_service import access
from transactions_service import app as transactions_app
from transactions_service.settings import Settings

REFUSING_URL = "http://127.0.0.1:9"
CONCURRENT_FIRST_TRANSFERS = 40


@asynccontextmanager
async def counting_accounts_service(database_url: str, lookups: list[str]) -> AsyncIterator[str]:
    @web.middleware
    async def count_lookups(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "POST" and request.path == access.OWNERS_PATH:
            lookups.extend((await request.json())["account_ids"])  # the body stays readable for the handler
        return await handler(request)

    settings = AccountsSettings(
        database_url=database_url,
        **TEST_KEYS,
        log_dir=tempfile.mkdtemp(prefix="owner-cache-logs-"),
        customer_service_url=REFUSING_URL,
        transactions_service_url=REFUSING_URL,
    )
    app = create_accounts_app(settings)
    app.middlewares.append(count_lookups)
    async with serve(app) as server:
        yield str(server.make_url("")).rstrip("/")


@pytest_asyncio.fixture(loop_scope="session")
async def system(
    accounts_db_url: str, transactions_db_url: str
) -> AsyncIterator[tuple[Any, list[str], web.Application]]:
    lookups: list[str] = []
    async with counting_accounts_service(accounts_db_url, lookups) as accounts_url:
        app = transactions_app.create_app(
            Settings(
                database_url=transactions_db_url,
                **TEST_KEYS,
                accounts_service_url=accounts_url,
                customer_service_url=REFUSING_URL,
            )
        )
        async with serve(app) as client:
            yield client, lookups, app


async def open_account(
    accounts_db_url: str, customer_id: uuid.UUID, balance: str = "100", account_id: uuid.UUID | None = None
) -> uuid.UUID:
    engine = create_engine(accounts_db_url, pool_size=1)
    try:
        row = await accounts.open_account(engine, customer_id, Decimal(balance), account_id)
    finally:
        await engine.dispose()
    return row["account_id"]


async def transfer(client: Any, customer_id: uuid.UUID, source: uuid.UUID, destination: uuid.UUID) -> Any:
    body = {"source_account_id": str(source), "destination_account_id": str(destination), "amount": "1.25"}
    return await client.post("/transfers", json=body, headers=bearer("customer", customer_id))


async def test_the_second_transfer_from_an_account_looks_up_no_owner(system, accounts_db_url) -> None:
    client, lookups, _ = system
    customer = uuid.uuid4()
    source = await open_account(accounts_db_url, customer)
    destination = await open_account(accounts_db_url, uuid.uuid4())

    first = await transfer(client, customer, source, destination)
    assert first.status == 200, await first.text()
    assert lookups.count(str(source)) == 1
    second = await transfer(client, customer, source, destination)
    assert second.status == 200, await second.text()
    assert lookups.count(str(source)) == 1  # the owner was remembered


async def test_a_wrong_owner_is_still_refused_from_the_cache_too(system, accounts_db_url) -> None:
    client, lookups, _ = system
    owner, stranger = uuid.uuid4(), uuid.uuid4()
    source = await open_account(accounts_db_url, owner)
    destination = await open_account(accounts_db_url, uuid.uuid4())

    for _ in range(2):
        answer = await transfer(client, stranger, source, destination)
        assert answer.status == 403, await answer.text()
        assert (await answer.json())["error"]["code"] == "FORBIDDEN"
    assert lookups.count(str(source)) == 1  # the second refusal came from the cache
    assert (await transfer(client, owner, source, destination)).status == 200


async def test_an_unknown_account_is_not_remembered(system, accounts_db_url) -> None:
    """A 404 is asked again next time: the account may have been opened since."""
    client, lookups, _ = system
    customer = uuid.uuid4()
    account_id = uuid.uuid4()
    destination = await open_account(accounts_db_url, uuid.uuid4())

    assert (await transfer(client, customer, account_id, destination)).status == 404
    await open_account(accounts_db_url, customer, "10", account_id)
    answer = await transfer(client, customer, account_id, destination)
    assert answer.status == 200, await answer.text()
    assert lookups.count(str(account_id)) == 2


async def test_concurrent_first_transfers_share_owner_lookups(system, accounts_db_url) -> None:
    """Checks that arrive together ride one message: fewer messages than accounts, each account named once."""
    client, lookups, app = system
    customer = uuid.uuid4()
    sources = [await open_account(accounts_db_url, customer) for _ in range(CONCURRENT_FIRST_TRANSFERS)]
    destination = await open_account(accounts_db_url, uuid.uuid4())
    batches_before = app[access.OWNER_LOOKUP_KEY].batches_sent

    answers = await asyncio.gather(*(transfer(client, customer, source, destination) for source in sources))
    assert [answer.status for answer in answers] == [200] * len(sources)
    assert sorted(lookups[-len(sources) :]) == sorted(str(source) for source in sources)
    assert app[access.OWNER_LOOKUP_KEY].batches_sent - batches_before < len(sources)


def test_the_cache_forgets_the_least_recently_used_owner_past_its_bound() -> None:
    owners = access.AccountOwners(max_size=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    owners.remember(first, uuid.UUID(int=1))
    owners.remember(second, uuid.UUID(int=2))
    assert owners.get(first) == uuid.UUID(int=1)  # now the most recently used
    owners.remember(third, uuid.UUID(int=3))
    assert len(owners) == 2
    assert owners.get(second) is None
    assert owners.get(first) == uuid.UUID(int=1) and owners.get(third) == uuid.UUID(int=3)
