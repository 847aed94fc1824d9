"""The bench's baseline, written straight into one database: the same transfer mix, one local transaction each.

It reads and writes PostgreSQL directly (asyncpg, no service in between) on purpose: it measures what one
database can do, the ceiling the 2PC system is compared with. cli.bench.driver drives it like the system.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Unpack

import asyncpg

from cli.bench.driver import DriveOptions, RunResult, drive
from cli.bench.workloads import Workload

BASELINE_TABLE = "bench_baseline_accounts"


class Baseline:
    """A table of accounts in one PostgreSQL database, and a transfer as one local transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.account_ids: list[uuid.UUID] = []

    async def create_accounts(self, count: int, opening_balance: Decimal) -> None:
        self.account_ids = [uuid.uuid4() for _ in range(count)]
        async with self.pool.acquire() as connection:
            await connection.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
            await connection.execute(f"""CREATE TABLE {BASELINE_TABLE} (
                account_id UUID PRIMARY KEY, balance NUMERIC(19,4) NOT NULL CHECK (balance >= 0))""")
            await connection.copy_records_to_table(
                BASELINE_TABLE, records=[(account_id, opening_balance) for account_id in self.account_ids]
            )

    async def transfer(self, source: int, destination: int, amount: Decimal) -> str:
        """'committed' or 'insufficient_funds'. Rows are locked in id order, so transfers never deadlock."""
        source_id, destination_id = self.account_ids[source], self.account_ids[destination]
        async with self.pool.acquire() as connection, connection.transaction():
            for account_id in sorted((source_id, destination_id)):
                if account_id == source_id:
                    debited = await connection.fetchval(
                        f"UPDATE {BASELINE_TABLE} SET balance = balance - $2 WHERE account_id = $1 "
                        "AND balance >= $2 RETURNING 1",
                        account_id,
                        amount,
                    )
                    if debited is None:
                        raise _Insufficient()
                else:
                    await connection.execute(
                        f"UPDATE {BASELINE_TABLE} SET balance = balance + $2 WHERE account_id = $1", account_id, amount
                    )
        return "committed"

    async def total(self) -> Decimal:
        async with self.pool.acquire() as connection:
            return await connection.fetchval(f"SELECT COALESCE(sum(balance), 0) FROM {BASELINE_TABLE}")

    async def drop(self) -> None:
        async with self.pool.acquire() as connection:
            await connection.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")


class _Insufficient(Exception):
    pass


async def baseline_transfer(baseline: Baseline, source: int, destination: int, amount: Decimal) -> str:
    try:
        return await baseline.transfer(source, destination, amount)
    except _Insufficient:
        return "insufficient_funds"


async def run_baseline(
    database_url: str,
    workload: Workload,
    *,
    on_tick: Callable[[RunResult], None] | None = None,
    **run: Unpack[DriveOptions],
) -> RunResult:
    pool = await asyncpg.create_pool(database_url, min_size=run["clients"], max_size=run["clients"])
    try:
        baseline = Baseline(pool)
        await baseline.create_accounts(workload.accounts, workload.opening_balance)
        result = await drive(
            lambda s, d, a: baseline_transfer(baseline, s, d, a), workload, target="baseline", on_tick=on_tick, **run
        )
        result.money_conserved = await baseline.total() == workload.total_money
        result.locks_left = 0
        await baseline.drop()
    finally:
        await pool.close()
    return result
