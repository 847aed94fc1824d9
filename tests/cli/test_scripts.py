"""scripts/: the databases set up and seeded from environment variables, tokens and demos as scripts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid

import asyncpg
import pytest

from harness.local_postgres import LocalPostgres
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e
SCRIPT_TIMEOUT_S = 120


def run_script(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "scripts" / name), *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=SCRIPT_TIMEOUT_S,
    )


async def _count(url: str, query: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


def test_setup_databases_and_seed_data_from_the_environment(postgres: LocalPostgres, subprocess_env) -> None:
    prefix = f"scripts{uuid.uuid4().hex[:8]}_"
    urls = {name: postgres.url(prefix + name) for name in ("customers", "accounts", "transactions")}
    env = {
        **subprocess_env,
        "CUSTOMERS_DATABASE_URL": urls["customers"],
        "ACCOUNTS_DATABASE_URL": urls["accounts"],
        "TRANSACTIONS_DATABASE_URL": urls["transactions"],
    }

    setup = run_script("setup-databases", env)
    seeded = run_script("seed-data", env)

    assert setup.returncode == 0, setup.stderr
    assert setup.stdout.count("created, migrated") == 3
    assert seeded.returncode == 0, seeded.stderr
    assert asyncio.run(_count(urls["customers"], "SELECT count(*) FROM customers")) == 3
    assert asyncio.run(_count(urls["accounts"], "SELECT count(*) FROM accounts")) == 5


def test_setup_databases_without_postgres_is_one_line(subprocess_env, closed_url: str) -> None:
    env = {**subprocess_env, "POSTGRES_URL": closed_url.replace("http", "postgresql")}

    result = run_script("setup-databases", env)

    assert result.returncode == 1
    assert result.stderr.startswith("cannot create database customers at postgresql://")
    assert result.stderr.count("\n") == 1


def test_generate_tokens_and_the_race_condition_script(subprocess_env) -> None:
    tokens = run_script("generate-tokens", subprocess_env, "admin", "--json")
    race = run_script("test-race-condition", subprocess_env)

    assert tokens.returncode == 0, tokens.stderr
    assert json.loads(tokens.stdout)[0]["role"] == "admin"
    assert race.returncode == 0, race.stdout + race.stderr
    assert "VERDICT: ✓ CORRECT" in race.stdout
