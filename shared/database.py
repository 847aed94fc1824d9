"""Engines and migrations. Each service owns one database and one alembic history."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

DEFAULT_POOL_SIZE = 10
DEFAULT_POOL_MAX_OVERFLOW = 10
DEFAULT_POOL_TIMEOUT_S = 10.0
DEFAULT_STATEMENT_TIMEOUT_MS = 10_000


def async_url(database_url: str) -> str:
    """Accept the usual postgres:// forms and point SQLAlchemy at asyncpg."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+asyncpg://" + database_url[len(prefix):]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def plain_url(database_url: str) -> str:
    """The libpq form (postgresql://...), for asyncpg.connect and psql."""
    return "postgresql://" + async_url(database_url)[len("postgresql+asyncpg://"):]


def create_engine(database_url: str, *, pool_size: int = DEFAULT_POOL_SIZE,
                  max_overflow: int = DEFAULT_POOL_MAX_OVERFLOW,
                  pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S,
                  statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS) -> AsyncEngine:
    return create_async_engine(
        async_url(database_url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=False,
        connect_args={"server_settings": {"statement_timeout": str(statement_timeout_ms),
                                          "idle_in_transaction_session_timeout": "60000"}},
    )


def migrate(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    """Run one service's alembic history against that service's database only."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    command.upgrade(config, revision)
