"""The test run's own throwaway PostgreSQL cluster, databases at migration head, and tokens."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, settings

from harness.local_postgres import LocalPostgres, free_port
from shared.auth import ACCOUNTS_SERVICE_NAME, SERVICE_NAMES, TRANSACTIONS_SERVICE_NAME, TokenKeys, issue_token
from shared.database import migrate

TEST_JWT_SECRET = "test-secret-for-the-suite-only-0123456789"
TEST_COORDINATOR_SECRET = "test-coordinator-secret-for-the-suite-0123456789"
TEST_SERVICE_SECRET = "test-service-secret-for-the-suite-only-0123456789"
# Every key a service may need, each at least 32 bytes and distinct (shared.auth.check_secrets): Settings(**TEST_KEYS).
TEST_KEYS = {
    "jwt_secret": TEST_JWT_SECRET,
    "service_token_secret": TEST_SERVICE_SECRET,
    "coordinator_token_secret": TEST_COORDINATOR_SECRET,
}
TEST_TOKEN_KEYS = TokenKeys(
    secret=TEST_JWT_SECRET, service_secret=TEST_SERVICE_SECRET, coordinator_secret=TEST_COORDINATOR_SECRET
)

# A fresh clone has no .hypothesis cache: building it makes the first examples slow, and tests talk to
# real PostgreSQL and real processes, so wall-clock deadlines would only measure this machine.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    cluster = LocalPostgres(tmp_path_factory.mktemp("pg") / "data", free_port(), durable=False)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop("immediate")


def make_database(postgres: LocalPostgres, service_package: str) -> str:
    """A new database at this service's migration head; its URL."""
    name = f"{service_package.split('_')[0]}_{uuid.uuid4().hex[:10]}"
    asyncio.run(postgres.create_database(name))
    url = postgres.url(name)
    migrate(ROOT / service_package / "migrations", url)
    return url


@pytest.fixture(scope="session")
def accounts_db_url(postgres: LocalPostgres) -> str:
    return make_database(postgres, "accounts_service")


@pytest.fixture(scope="session")
def customers_db_url(postgres: LocalPostgres) -> str:
    return make_database(postgres, "customer_service")


@pytest.fixture(scope="session")
def transactions_db_url(postgres: LocalPostgres) -> str:
    return make_database(postgres, "transactions_service")


def token(role: str, customer_id: uuid.UUID | None = None, *, secret: str | None = None, ttl_s: int = 3600) -> str:
    """A test token (a service token with the service key); it names every service as its audience, so it
    works against any of them. `secret` replaces the key that signs it."""
    audience = list(SERVICE_NAMES) if role == "service" else None
    keys = TEST_TOKEN_KEYS if secret is None else TokenKeys(secret=secret)
    return issue_token(keys, role=role, customer_id=customer_id, ttl_s=ttl_s, audience=audience)[0]


def coordinator_token(*, secret: str = TEST_COORDINATOR_SECRET, subject: str = TRANSACTIONS_SERVICE_NAME) -> str:
    """A token only the coordinator can sign: what /2pc/prepare, commit and abort accept."""
    return issue_token(
        TokenKeys(secret=TEST_JWT_SECRET, coordinator_secret=secret),
        role="service",
        subject=subject,
        audience=ACCOUNTS_SERVICE_NAME,
        ttl_s=3600,
        coordinator=True,
    )[0]


def bearer(role: str, customer_id: uuid.UUID | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, customer_id)}"}


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[TestClient]:
    """An app on a free port with its cleanup_ctx run, and a client for it."""
    client = TestClient(TestServer(app, port=free_port()))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say it plainly when the browser tests could not run (no Chromium on this machine)."""
    skipped = [report for report in terminalreporter.stats.get("skipped", []) if "tests/browser" in report.nodeid]
    if skipped:
        reason = skipped[0].longrepr[2] if isinstance(skipped[0].longrepr, tuple) else str(skipped[0].longrepr)
        terminalreporter.write_line(f"SKIPPED {len(skipped)} browser tests: {reason}", yellow=True, bold=True)
