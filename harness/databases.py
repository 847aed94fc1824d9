"""The three databases of a configured system: created directly, migrated and seeded by each service's own command.

Used by scripts/setup-databases and scripts/seed-data. Each service owns its database; its URL comes
from the environment:

    CUSTOMERS_DATABASE_URL      default  $POSTGRES_URL/customers
    ACCOUNTS_DATABASE_URL       default  $POSTGRES_URL/accounts
    TRANSACTIONS_DATABASE_URL   default  $POSTGRES_URL/transactions
    POSTGRES_URL                default  postgresql://postgres@127.0.0.1:55432 (the cluster of `banking-cli up`)

Migrations and demo data run as `python -m <service> migrate|seed-demo` with DATABASE_URL set, the way
a deployment runs them; nothing here imports a service.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:55432"
COMMAND_TIMEOUT_S = 300
CONNECT_TIMEOUT_S = 10
# service package -> (its database's default name, the variable naming its URL)
DATABASES = {
    "customer_service": ("customers", "CUSTOMERS_DATABASE_URL"),
    "accounts_service": ("accounts", "ACCOUNTS_DATABASE_URL"),
    "transactions_service": ("transactions", "TRANSACTIONS_DATABASE_URL"),
}


def database_urls(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each service's database URL, from its variable or from POSTGRES_URL and the default name."""
    environ = os.environ if environ is None else environ
    server = environ.get("POSTGRES_URL") or DEFAULT_POSTGRES_URL
    return {
        service: environ.get(variable) or _with_database(server, name)
        for service, (name, variable) in DATABASES.items()
    }


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


def create_database(url: str) -> bool:
    """Create the URL's database when missing, connecting to the server's `postgres` database; True if created."""
    import asyncpg

    name = urlsplit(url).path.lstrip("/")
    assert name.replace("_", "").isalnum(), "database names are plain identifiers"

    async def create() -> bool:
        connection = await asyncpg.connect(_with_database(url, "postgres"), timeout=CONNECT_TIMEOUT_S)
        try:
            if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                return False
            await connection.execute(f'CREATE DATABASE "{name}"')
            return True
        finally:
            await connection.close()

    try:
        return asyncio.run(create())
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        raise SystemExit(f"cannot create database {name} at {redacted(url)}: {type(error).__name__}: {error}") from None


def run_service_command(service: str, command: str, database_url: str) -> None:
    """`python -m <service> <command>` against its database; SystemExit with its error output on failure."""
    assert service in DATABASES, f"unknown service {service}"
    result = subprocess.run(
        [sys.executable, "-m", service, command],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=COMMAND_TIMEOUT_S,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise SystemExit(f"{service} {command} failed: {lines[-1] if lines else f'exit {result.returncode}'}")


def redacted(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
