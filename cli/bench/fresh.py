"""A fresh system for one bench variant (`--start`): its own PostgreSQL cluster, databases, services and data.

The harness starts it (processes, migrations, and for a loaded variant the bulk fixture written straight
into the databases); the bench then talks to it over HTTP like to any other system.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from cli.bench.variants import Variant


@dataclass(frozen=True)
class RunningSystem:
    urls: dict[str, str]  # customers, accounts, transactions
    jwt_secret: str
    postgres_url: str  # the cluster's `postgres` database: the baseline's home
    database_urls: dict[str, str]  # each service's own database, for the scale fixture's plans
    preload_s: dict[str, Decimal]  # seconds the scale fixture took per database (empty when not loaded)


@asynccontextmanager
async def fresh_system(
    variant: Variant, *, jwt_secret: str, fsync: bool, service_env: dict[str, str], status
) -> AsyncIterator[RunningSystem]:
    """Start, yield, and always stop and delete. `status(text)` is a context manager showing progress."""
    from harness.local_postgres import LocalPostgres, free_port
    from harness.system import SERVICES, LocalSystem

    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    postgres = LocalPostgres(folder / "pg", free_port(), durable=fsync)
    system = LocalSystem(
        postgres,
        {spec.name: free_port() for spec in SERVICES},
        folder / "logs",
        jwt_secret=jwt_secret,
        demo_endpoints=False,
        extra_env={**service_env, **variant.service_env},
    )
    try:
        with status(f"starting a fresh system{' for ' + variant.label if variant.label else ''}"):
            await asyncio.to_thread(postgres.start)
            await asyncio.to_thread(system.prepare)
        preload_s = await _preload(system, variant, status) if variant.preload else {}
        with status("starting the services"):
            await asyncio.to_thread(system.start_all)
        yield RunningSystem(
            urls={
                "customers": system.url("customer_service"),
                "accounts": system.url("accounts_service"),
                "transactions": system.url("transactions_service"),
            },
            jwt_secret=jwt_secret,
            postgres_url=postgres.url("postgres"),
            database_urls={spec.name: system.database_url(spec.name) for spec in SERVICES},
            preload_s=preload_s,
        )
    finally:
        await asyncio.to_thread(system.stop_all)
        await asyncio.to_thread(postgres.stop)
        shutil.rmtree(folder, ignore_errors=True)


async def _preload(system, variant: Variant, status) -> dict[str, Decimal]:
    from harness.scale_fixture import load

    size = variant.preload
    assert size is not None, "only a variant with a preload is loaded"
    with status(f"loading {size.accounts:,} accounts and {size.transfers:,} transfers straight into the databases"):
        return await load(
            {name: system.database_url(name) for name in system.ports}, accounts=size.accounts, transfers=size.transfers
        )
