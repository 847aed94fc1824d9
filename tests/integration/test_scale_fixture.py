"""The bench's scale fixture on fresh databases: consistent money, the migrations' own indexes back, no scans."""

from __future__ import annotations

import asyncio

import asyncpg

from harness.hot_path_plans import explain_hot_path
from harness.local_postgres import LocalPostgres
from harness.scale_fixture import EVENT_TYPES, OPENING_BALANCE, load
from shared import jsonio
from tests.conftest import make_database

ACCOUNTS = 20
TRANSFERS = 50
INDEXES = """SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
             ORDER BY tablename, indexname"""
CONSTRAINTS = """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"""


async def _rows(url: str, query: str) -> list[tuple]:
    connection = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await connection.fetch(query)]
    finally:
        await connection.close()


def test_the_fixture_loads_consistent_history_and_puts_every_key_and_index_back(postgres: LocalPostgres) -> None:
    urls = {
        service: make_database(postgres, service)
        for service in ("customer_service", "accounts_service", "transactions_service")
    }
    before = {
        service: asyncio.run(_rows(url, INDEXES)) + asyncio.run(_rows(url, CONSTRAINTS))
        for service, url in urls.items()
    }

    seconds = asyncio.run(load(urls, accounts=ACCOUNTS, transfers=TRANSFERS))

    assert jsonio.loads(jsonio.dumps(seconds)) == seconds  # the bench writes them in its JSON: no float

    assert {
        service: asyncio.run(_rows(url, INDEXES)) + asyncio.run(_rows(url, CONSTRAINTS))
        for service, url in urls.items()
    } == before
    accounts = urls["accounts_service"]
    (balances,) = asyncio.run(_rows(accounts, "SELECT count(*), min(balance), max(balance) FROM accounts"))
    assert balances == (ACCOUNTS, OPENING_BALANCE, OPENING_BALANCE)  # pairs move money there and back
    assert (
        asyncio.run(
            _rows(
                accounts,
                """
        SELECT account_id FROM participant_log WHERE state = 'committed' GROUP BY account_id
        HAVING sum(change) <> $$1000$$::numeric""",
            )
        )
        == []
    )
    assert asyncio.run(_rows(accounts, "SELECT count(*) FROM participant_log WHERE kind = 'transfer'")) == [
        (2 * TRANSFERS,)
    ]
    transactions = urls["transactions_service"]
    assert asyncio.run(_rows(transactions, "SELECT count(*) FROM transactions WHERE status = 'committed'")) == [
        (TRANSFERS,)
    ]
    assert asyncio.run(_rows(transactions, "SELECT count(*) FROM transaction_events")) == [
        (TRANSFERS * len(EVENT_TYPES),)
    ]


def test_no_statement_of_a_transfer_scans_a_loaded_table(postgres: LocalPostgres) -> None:
    urls = {
        service: make_database(postgres, service)
        for service in ("customer_service", "accounts_service", "transactions_service")
    }
    asyncio.run(load(urls, accounts=2_000, transfers=20_000))

    plans = asyncio.run(explain_hot_path(urls))

    assert {plan["statement"] for plan in plans} >= {
        "accept",
        "decide",
        "complete",
        "ownership check",
        "prepare",
        "commit",
    }
    assert [plan for plan in plans if plan["scans"]] == []
