"""Seeding the demo data never keeps the system from starting: it restores what it can and says what it skipped."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from customer_service import demo_data, service
from customer_service.domain import ContactInfo, NewCustomer
from customer_service.passwords import Passwords
from harness.local_postgres import LocalPostgres, free_port
from harness.system import SERVICES, LocalSystem
from shared.database import create_engine
from tests.conftest import ROOT, TEST_COORDINATOR_SECRET, TEST_JWT_SECRET, TEST_SERVICE_SECRET, make_database

SEED_TIMEOUT_S = 120
FAST_PASSWORDS = Passwords(time_cost=1, memory_kib=8192)
ALICE_EMAIL = "alice@example.com"


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_customers(postgres: LocalPostgres) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A customers database of its own: these tests change the demo rows the other tests log in with."""
    url = await asyncio.to_thread(make_database, postgres, "customer_service")
    engine = create_engine(url, pool_size=1)
    try:
        yield url, engine
    finally:
        await engine.dispose()


async def _alice_replaced_through_the_api(engine: AsyncEngine) -> uuid.UUID:
    """What an admin can do over the API: delete the demo Alice (and her login), give her email to someone new."""
    await service.delete_customer(engine, demo_data.ALICE)
    stranger = uuid.uuid4()
    await service.create_customer(
        engine,
        FAST_PASSWORDS,
        NewCustomer(stranger, "Someone Else", "1 Other Road", ContactInfo(ALICE_EMAIL, "+44 0000 000000")),
    )
    return stranger


async def test_a_second_seed_creates_nothing_and_skips_nothing(fresh_customers) -> None:
    _url, engine = fresh_customers

    first = await demo_data.seed(engine, FAST_PASSWORDS)
    second = await demo_data.seed(engine, FAST_PASSWORDS)

    assert len(first.created) == len(demo_data.DEMO_CUSTOMERS) + len(demo_data.DEMO_LOGINS)
    assert first.skipped == []
    assert second.created == [] and second.skipped == []


async def test_seed_skips_a_demo_customer_whose_email_was_given_away_and_restores_the_rest(fresh_customers) -> None:
    _url, engine = fresh_customers
    await demo_data.seed(engine, FAST_PASSWORDS)
    stranger = await _alice_replaced_through_the_api(engine)
    # Bob is deleted: a customer id is never reused (issue 14), so the seed cannot bring him back either.
    await service.delete_customer(engine, demo_data.BOB)

    report = await demo_data.seed(engine, FAST_PASSWORDS)

    assert report.created == []
    retired = "this customer_id belonged to a deleted customer and is never reused"
    assert report.skipped == [
        f"customer Alice Johnson: {retired}",
        f"customer Bob Smith: {retired}",
        "login alice: its customer Alice Johnson is missing",
        "login bob: its customer Bob Smith is missing",
    ]
    assert (await service.find_customer_by_email(engine, ALICE_EMAIL))["customer_id"] == stranger
    assert not await service.customer_exists(engine, demo_data.BOB)
    assert not await service.customer_exists(engine, demo_data.ALICE)


async def test_seed_demo_command_exits_zero_and_prints_what_it_skipped(fresh_customers, tmp_path) -> None:
    url, engine = fresh_customers
    await demo_data.seed(engine, FAST_PASSWORDS)
    await _alice_replaced_through_the_api(engine)
    environment = {
        "DATABASE_URL": url,
        "LOG_DIR": str(tmp_path),
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "8192",
        "PATH": "/usr/bin:/bin",
    }

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "customer_service", "seed-demo"],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=SEED_TIMEOUT_S,
    )

    assert result.returncode == 0, result.stderr
    assert (
        "skipped customer Alice Johnson: this customer_id belonged to a deleted customer and is never reused"
        in result.stdout
    )


async def test_the_local_system_prepares_again_after_the_api_changed_the_demo_data(
    postgres: LocalPostgres, tmp_path
) -> None:
    """What `make up` runs before it starts the services, twice: the second start names what it skipped."""
    system = LocalSystem(
        postgres,
        {spec.name: free_port() for spec in SERVICES},
        log_dir=tmp_path,
        jwt_secret=TEST_JWT_SECRET,
        coordinator_token_secret=TEST_COORDINATOR_SECRET,
        service_token_secret=TEST_SERVICE_SECRET,
        database_prefix=f"seed{uuid.uuid4().hex[:8]}_",
    )
    first = await asyncio.to_thread(system.prepare, seed=True)
    engine = create_engine(system.database_url("customer_service"), pool_size=1)
    try:
        await _alice_replaced_through_the_api(engine)
    finally:
        await engine.dispose()

    second = await asyncio.to_thread(system.prepare, seed=True)

    assert first == []
    assert second == [
        "customer_service seed-demo: skipped customer Alice Johnson: "
        "this customer_id belonged to a deleted customer and is never reused",
        "customer_service seed-demo: skipped login alice: its customer Alice Johnson is missing",
    ]
