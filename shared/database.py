"""Engines and migrations. Each service owns one database and one alembic history."""
from __future__ import annotations

import weakref
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.settings import DEFAULT_SERVICE_POOL_SIZE

DEFAULT_POOL_SIZE = DEFAULT_SERVICE_POOL_SIZE
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
    url, ssl_mode = split_sslmode(database_url)
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=False,
        connect_args={"server_settings": {"statement_timeout": str(statement_timeout_ms),
                                          "idle_in_transaction_session_timeout": "60000"},
                      "ssl": ssl_mode},
    )


# libpq's sslmode values; asyncpg takes the same words as `ssl`, but not `sslmode` from SQLAlchemy's URL.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_SSL_MODE = "prefer"  # libpq's default: TLS when the server offers it, plain otherwise


def split_sslmode(database_url: str) -> tuple[URL, str]:
    """The URL for SQLAlchemy without `sslmode`, and that mode (DEFAULT_SSL_MODE when not named)."""
    url = make_url(async_url(database_url))
    mode = url.query.get("sslmode", DEFAULT_SSL_MODE)
    if mode not in SSL_MODES:
        raise ValueError(f"DATABASE_URL sslmode must be one of {', '.join(SSL_MODES)}")
    return url.difference_update_query(["sslmode"]), str(mode)


def migrate(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    """Run one service's alembic history against that service's database only."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    command.upgrade(config, revision)


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool without BEGIN/COMMIT round trips, for work that is one statement (atomic on its own).

    Made once per engine: each execution_options() call builds a new engine view and registers event
    listeners, which per request would cost CPU and grow without bound.
    """
    view = _autocommit_views.get(engine)
    if view is None:
        view = _autocommit_views[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return view


_autocommit_views: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = weakref.WeakKeyDictionary()


def sqlstate_of(error: Exception) -> str | None:
    """The PostgreSQL SQLSTATE behind a SQLAlchemy error, when there is one."""
    for candidate in (getattr(error, "orig", None), getattr(getattr(error, "orig", None), "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return code
    return None
