"""Engines and migrations. Each service owns one database and one alembic history."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any, overload

import asyncpg
from aiohttp import web
from alembic import command
from alembic.config import Config
from sqlalchemy import Row, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.settings import DEFAULT_SERVICE_POOL_SIZE

# Where a service app keeps its engine (shared/service_app.py opens and disposes of it).
ENGINE_KEY = web.AppKey("engine", AsyncEngine)

DEFAULT_POOL_SIZE = DEFAULT_SERVICE_POOL_SIZE
DEFAULT_POOL_MAX_OVERFLOW = 10
DEFAULT_POOL_TIMEOUT_S = 10.0
DEFAULT_STATEMENT_TIMEOUT_MS = 10_000
# Opening one connection, handshake and authentication included (asyncpg's default is 60 s): a database
# that does not answer by then is down for this request, which hears 503 at once instead of a minute later.
DEFAULT_CONNECT_TIMEOUT_S = 5.0
# The client's own bound on one statement's round trip. The server cancels a statement at
# statement_timeout; this covers what the server cannot: a database that stopped answering altogether.
DEFAULT_COMMAND_TIMEOUT_S = DEFAULT_STATEMENT_TIMEOUT_MS / 1000 + 2.0
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
# SQLSTATE classes that mean "the database cannot serve this now", not "this request is wrong":
# 08 connection exception, 53 insufficient resources (too many connections), 57 operator intervention
# (admin shutdown, crash shutdown, "the database system is starting up", a cancelled statement), and
# 40 a transaction the server rolled back to break a deadlock or a serialization conflict: nothing of
# it was written, so the caller may try again.
UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})


def async_url(database_url: str) -> str:
    """Accept the usual postgres:// forms and point SQLAlchemy at asyncpg."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+asyncpg://" + database_url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def plain_url(database_url: str) -> str:
    """The libpq form (postgresql://...), for asyncpg.connect and psql."""
    return "postgresql://" + async_url(database_url)[len("postgresql+asyncpg://") :]


def create_engine(
    database_url: str,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    max_overflow: int = DEFAULT_POOL_MAX_OVERFLOW,
    pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
) -> AsyncEngine:
    url, ssl_mode = split_sslmode(database_url)
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout_s,
        # No ping round trip per checkout: a connection the driver knows is closed is dropped at checkout
        # (below), and the first disconnect error invalidates the whole pool (SQLAlchemy does that itself).
        pool_pre_ping=False,
        connect_args={
            "server_settings": {
                "statement_timeout": str(statement_timeout_ms),
                "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_TIMEOUT_MS),
            },
            "timeout": connect_timeout_s,
            "command_timeout": command_timeout_s,
            "ssl": ssl_mode,
        },
    )
    event.listen(engine.sync_engine.pool, "checkout", _drop_closed_connection)
    event.listen(engine.sync_engine, "handle_error", _broken_by_the_server)
    return engine


def _broken_by_the_server(context: Any) -> None:
    """A backend the server ends while its connection is idle in the pool (pg_terminate_backend, a crash of
    another backend) says goodbye with a FATAL message just before its socket closes. asyncpg, which expects
    no message then, takes it as a protocol error and refuses every later statement with InternalClientError
    until it sees the socket close. Our code never shares a connection between two coroutines, so here that
    error means the server ended it: a disconnect, which makes the pool drop the connection."""
    if isinstance(context.original_exception, asyncpg.InternalClientError):
        context.is_disconnect = True


def _drop_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection whose socket the driver saw close (a restart, a terminated backend) is never
    handed out: DisconnectionError makes the pool replace it with a fresh one. A local check, no round trip."""
    driver_connection = getattr(dbapi_connection, "driver_connection", None)
    if driver_connection is not None and driver_connection.is_closed():
        raise sa_exc.DisconnectionError("pooled connection was closed by the server")


def database_unavailable(error: BaseException) -> bool:
    """True when the error means the database cannot serve now (down, restarting, unreachable, overloaded).

    Such an error is an operating condition, never a bug: before anything was decided the answer is
    503 with Retry-After. Read from the whole cause chain, because a connection reset while connecting
    reaches us raw or wrapped, depending on where in the driver it happened.
    """
    seen: set[int] = set()
    candidate: BaseException | None = error
    while candidate is not None and id(candidate) not in seen:
        seen.add(id(candidate))
        if isinstance(candidate, sa_exc.DBAPIError) and candidate.connection_invalidated:
            return True
        if isinstance(
            candidate,
            (
                sa_exc.OperationalError,
                sa_exc.InterfaceError,
                sa_exc.TimeoutError,
                sa_exc.DisconnectionError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,  # see _broken_by_the_server
                OSError,
            ),
        ):
            return True  # OSError covers refused and reset connections and TimeoutError
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str) and code[:2] in UNAVAILABLE_SQLSTATE_CLASSES:
            return True
        candidate = getattr(candidate, "orig", None) or candidate.__cause__ or candidate.__context__
    return False


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
    """The PostgreSQL SQLSTATE of a driver error, or of the one behind a SQLAlchemy error, when there is one."""
    orig = getattr(error, "orig", None)
    for candidate in (error, orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return code
    return None


def constraint_of(error: Exception) -> str | None:
    """The constraint a driver error names (a unique, check or foreign key violation), or the one behind a
    SQLAlchemy error, when there is one."""
    orig = getattr(error, "orig", None)
    for candidate in (error, orig, getattr(orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if name:
            return name
    return None


@overload
def row_dict(result_row: Row[Any]) -> dict[str, Any]: ...
@overload
def row_dict(result_row: Row[Any] | None) -> dict[str, Any] | None: ...
def row_dict(result_row: Row[Any] | None) -> dict[str, Any] | None:
    """A result row as a plain dict (None stays None): what the services' queries hand to their callers."""
    return dict(result_row._mapping) if result_row is not None else None
