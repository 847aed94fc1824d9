"""python -m customer_service create-admin: a deployment's first admin, its password from a file, the
environment or a prompt, never an argument; the new admin can log in and act as one."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness.system import LocalSystem
from tests.e2e.conftest import Api

COMMAND_TIMEOUT_S = 60


def create_admin(system: LocalSystem, *arguments: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "customer_service", "create-admin", *arguments],
        env=system.service_env("customer_service", environment),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.asyncio(loop_scope="session")
async def test_create_admin_from_the_environment_then_log_in_as_admin(system: LocalSystem, api: Api) -> None:
    username = f"root-{uuid.uuid4().hex[:8]}"
    result = create_admin(system, "--username", username, ADMIN_PASSWORD="a long admin password")
    assert result.returncode == 0, result.stderr
    token = await api.login(username, "a long admin password")
    assert (await api.call("GET", "transactions_service", "/transactions/monitoring/stats", auth=token)).status == 200
    again = create_admin(system, "--username", username, ADMIN_PASSWORD="another long password")
    assert again.returncode != 0 and "taken" in again.stderr


def test_create_admin_from_a_file_and_refusing_a_short_password(system: LocalSystem, tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("from a file, long enough\n")
    username = f"root-{uuid.uuid4().hex[:8]}"
    assert create_admin(system, "--username", username, "--password-file", str(password_file)).returncode == 0
    short = create_admin(system, "--username", f"x-{uuid.uuid4().hex[:8]}", ADMIN_PASSWORD="short")
    assert short.returncode != 0 and "password must be" in short.stderr


def test_seed_demo_loads_no_demo_logins_when_demo_data_is_false(postgres, tmp_path: Path) -> None:
    """Compose runs seed-demo with DEMO_DATA=false unless asked: no admin/admin123 in a deployment."""
    import asyncio

    import asyncpg

    from tests.conftest import make_database

    url = make_database(postgres, "customer_service")
    environment = {**__import__("os").environ, "DATABASE_URL": url, "LOG_DIR": str(tmp_path), "DEMO_DATA": "false"}
    result = subprocess.run(
        [sys.executable, "-m", "customer_service", "seed-demo"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr

    async def logins() -> int:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetchval("SELECT count(*) FROM users")
        finally:
            await connection.close()

    assert asyncio.run(logins()) == 0
