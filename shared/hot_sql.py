"""The statements of a transfer, run on the raw asyncpg connection under SQLAlchemy's pool.

SQLAlchemy stays for schemas, migrations and the cold paths. A transfer's few statements skip its
execute layer (a greenlet hop, parameter and result processing: about 0.2 ms per statement here) and
go to asyncpg directly, whose per-connection cache prepares each statement once. The pool, its bounds
and its checks stay SQLAlchemy's, so both kinds of work share one set of connections.

A HotStatement is written like any `text()` statement, with `:name` parameters, and compiled once at
import to asyncpg's `$n` form. Rows come back as asyncpg Records (`row["column"]`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

# `:name`, not the second colon of a `::type` cast nor a colon inside a word.
_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class HotStatement:
    """One SQL text with `:name` parameters, as asyncpg runs it: `$1..$n` in the order names first appear."""

    def __init__(self, sql: str) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        self.text = sql  # as written, with its `:name` parameters
        self.sql = _PARAMETER.sub(number, sql)
        self.names = tuple(names)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        assert set(params) == set(self.names), f"parameters {sorted(params)} for {sorted(self.names)}"
        return [params[name] for name in self.names]

    async def fetch(self, connection: asyncpg.Connection, params: Mapping[str, Any]) -> list[asyncpg.Record]:
        return await connection.fetch(self.sql, *self.arguments(params))


@asynccontextmanager
async def raw_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection as asyncpg sees it, outside any transaction: each statement commits on its own."""
    async with engine.connect() as connection:
        pooled = await connection.get_raw_connection()
        driver: asyncpg.Connection = pooled.driver_connection
        try:
            yield driver
        finally:
            _never_return_mid_transaction(driver)


@asynccontextmanager
async def raw_transaction(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection inside one local transaction: committed when the block ends, rolled back on error."""
    async with raw_connection(engine) as driver, driver.transaction():
        yield driver


def _never_return_mid_transaction(driver: asyncpg.Connection) -> None:
    """SQLAlchemy's reset on return rolls back only the transactions it began itself. A connection left in
    ours (a rollback cut short by a cancellation or a dead socket) is closed instead: the pool's checkout
    check (shared/database.py) then replaces it, and the server rolls the transaction back."""
    if not driver.is_closed() and driver.is_in_transaction():
        driver.terminate()
