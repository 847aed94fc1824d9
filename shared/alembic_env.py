"""The body of every service's migrations/env.py: run its history online, on asyncpg."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from shared.database import split_sslmode


def run_migrations() -> None:
    if context.is_offline_mode():
        context.configure(url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online())


async def _run_online() -> None:
    configured_url = context.config.get_main_option("sqlalchemy.url")
    assert configured_url is not None, "the caller sets sqlalchemy.url"
    url, ssl_mode = split_sslmode(configured_url)  # as the services connect
    engine = create_async_engine(url, poolclass=pool.NullPool, connect_args={"ssl": ssl_mode})
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
    await engine.dispose()


def _run_sync(connection) -> None:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
