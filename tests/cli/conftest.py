"""banking-cli driven through typer's CliRunner against the three services running as real processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner, Result

from cli.core.client import Client
from cli.core.config import load_config
from cli.core.session import save_session
from cli.main import app
from harness.local_postgres import free_port
from harness.system import LocalSystem
from shared import demo_ids
from tests.conftest import TEST_JWT_SECRET, token
from tests.e2e.conftest import ALICE, BOB, system  # noqa: F401  (the session's running services)

ALICE_MAIN = str(demo_ids.ALICE_MAIN)
BOB_MAIN = str(demo_ids.BOB_MAIN)
__all__ = ["ALICE", "BOB", "ALICE_MAIN", "BOB_MAIN", "Cli"]


@dataclass
class Cli:
    """Runs `banking-cli ARGS` in-process with its own environment: service URLs, token file, HOME."""

    env: dict[str, str]
    token_file: Path
    runner: CliRunner = field(default_factory=CliRunner)

    def __call__(self, *args: str, input: str | None = None, **overrides: str) -> Result:
        return self.runner.invoke(app, list(args), env={**self.env, **overrides}, input=input)

    def log_in_as(self, username: str, role: str = "customer", customer_id: UUID | None = None) -> None:
        """A saved session without the password round trip (login itself has its own tests)."""
        save_session(self.token_file, token(role, customer_id), username)

    @property
    def client(self) -> Client:
        """A teller's client for arranging test data over HTTP."""
        return Client(load_config(self.env), token("teller"))

    def open_account(self, customer_id: UUID, balance: Decimal) -> str:
        data = self.client.call(
            "accounts", "POST", "/accounts", {"customer_id": str(customer_id), "initial_balance": balance}
        )
        return str(data["account_id"])

    def balance(self, account_id: str) -> Decimal:
        return Client(load_config(self.env), token("admin")).get("accounts", f"/accounts/{account_id}")["balance"]


def cli_environment(system: LocalSystem, home: Path) -> dict[str, str]:  # noqa: F811
    return {
        "CUSTOMER_SERVICE_URL": system.url("customer_service"),
        "ACCOUNTS_SERVICE_URL": system.url("accounts_service"),
        "TRANSACTIONS_SERVICE_URL": system.url("transactions_service"),
        "TOKEN_FILE": str(home / "token"),
        "JWT_SECRET": TEST_JWT_SECRET,
        "HOME": str(home),  # no config file or token of the person running the tests
        "BANKING_CLI_CONFIG": "",
        "COLUMNS": "200",
    }


@pytest.fixture
def cli(system: LocalSystem, tmp_path: Path) -> Iterator[Cli]:  # noqa: F811
    env = cli_environment(system, tmp_path)
    yield Cli(env, tmp_path / "token")


@pytest.fixture
def closed_url() -> str:
    """A URL nothing listens on: a free port that is never bound."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def subprocess_env(system: LocalSystem, tmp_path: Path) -> dict[str, str]:  # noqa: F811
    return {**os.environ, **cli_environment(system, tmp_path)}
