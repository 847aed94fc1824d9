"""login, logout, whoami, tokens: the token file, its mode, and what a wrong password or no login does."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta

import pytest

from cli.core.client import Client
from cli.core.config import load_config
from cli.core.errors import EXIT_AUTH, EXIT_UNAVAILABLE, EXIT_USAGE
from cli.core.session import save_session, session_from_token
from tests.cli.conftest import ALICE, ALICE_MAIN, Cli
from tests.conftest import token

pytestmark = pytest.mark.e2e


def test_login_asks_for_the_password_and_saves_the_token_owner_only(cli: Cli) -> None:
    result = cli("login", "-u", "alice", input="alice123\n")

    assert result.exit_code == 0, result.output
    assert "Logged in as alice" in result.stdout
    assert "alice123" not in result.stdout
    assert stat.S_IMODE(cli.token_file.stat().st_mode) == 0o600
    whoami = json.loads(cli("whoami", "--json").stdout)
    assert whoami["username"] == "alice"
    assert whoami["role"] == "customer"
    assert whoami["customer_id"] == str(ALICE)


def test_login_asks_for_the_username_too(cli: Cli) -> None:
    result = cli("login", input="bob\nbob123\n")

    assert result.exit_code == 0, result.output
    assert "Logged in as bob" in result.stdout


def test_the_saved_token_is_used_by_the_next_command(cli: Cli) -> None:
    assert cli("login", "-u", "alice", "-p", "alice123").exit_code == 0

    result = cli("accounts", "--json")

    assert result.exit_code == 0, result.output
    assert ALICE_MAIN in {row["account_id"] for row in json.loads(result.stdout)}


def test_a_wrong_password_exits_with_the_auth_code_in_one_line(cli: Cli) -> None:
    result = cli("login", "-u", "alice", "-p", "wrong-password")

    assert result.exit_code == EXIT_AUTH
    assert result.stderr.strip().count("\n") == 0
    assert "invalid username or password" in result.stderr
    assert "Traceback" not in result.output
    assert not cli.token_file.exists()


def test_logout_forgets_the_token(cli: Cli) -> None:
    cli.log_in_as("alice", customer_id=ALICE)

    assert cli("logout").exit_code == 0
    assert not cli.token_file.exists()
    result = cli("whoami")
    assert result.exit_code == EXIT_AUTH
    assert "not logged in" in result.stderr
    assert "banking-cli login" in result.stderr


def test_commands_need_a_login(cli: Cli) -> None:
    result = cli("accounts")

    assert result.exit_code == EXIT_AUTH
    assert "not logged in" in result.stderr


def test_an_expired_session_is_refused_before_any_request(cli: Cli) -> None:
    save_session(cli.token_file, token("customer", ALICE, ttl_s=-60), "alice")

    result = cli("accounts")

    assert result.exit_code == EXIT_AUTH
    assert "expired" in result.stderr


def test_a_token_the_services_reject_exits_with_the_auth_code(cli: Cli) -> None:
    save_session(cli.token_file, token("customer", ALICE, secret="not-the-services-secret-0123456789"), "alice")

    result = cli("accounts")

    assert result.exit_code == EXIT_AUTH
    assert "invalid token" in result.stderr


def test_login_with_the_customer_service_down_is_a_clean_unavailable(cli: Cli, closed_url: str) -> None:
    result = cli("login", "-u", "alice", "-p", "alice123", CUSTOMER_SERVICE_URL=closed_url)

    assert result.exit_code == EXIT_UNAVAILABLE
    assert f"customer service at {closed_url} is unavailable" in result.stderr
    assert "Traceback" not in result.output


def test_tokens_are_minted_for_every_role_and_accepted_by_the_services(cli: Cli) -> None:
    result = cli("tokens", "--json")

    assert result.exit_code == 0, result.output
    minted = {row["username"]: row for row in json.loads(result.stdout)}
    assert set(minted) == {"alice", "bob", "carol", "teller", "admin"}
    assert minted["alice"]["customer_id"] == str(ALICE)
    save_session(cli.token_file, minted["admin"]["token"], "admin")
    assert cli("balance", "-a", ALICE_MAIN).exit_code == 0


def test_tokens_pretty_output_and_an_unknown_identity(cli: Cli) -> None:
    pretty = cli("tokens", "teller")
    unknown = cli("tokens", "mallory")

    assert pretty.exit_code == 0
    assert "teller" in pretty.stdout and "eyJ" in pretty.stdout
    assert unknown.exit_code == EXIT_USAGE
    assert "no demo identity 'mallory'" in unknown.stderr


def test_logout_revokes_the_session_on_the_server(cli: Cli) -> None:
    assert cli("login", "-u", "alice", "-p", "alice123").exit_code == 0
    saved = json.loads(cli.token_file.read_text())
    assert saved["refresh_token"]
    result = cli("logout")
    assert result.exit_code == 0 and "revoked on the server" in result.stdout
    refused = Client(load_config(cli.env)).request(
        "customer", "POST", "/auth/refresh", {"refresh_token": saved["refresh_token"]}
    )
    assert refused.status == 401  # the session is over server-side, not only forgotten here


def test_an_expiring_token_is_refreshed_transparently(cli: Cli) -> None:
    assert cli("login", "-u", "alice", "-p", "alice123").exit_code == 0
    saved = json.loads(cli.token_file.read_text())
    # Keep the real refresh token but a token that expires in 10 s: the next command refreshes first.
    save_session(cli.token_file, token("customer", ALICE, ttl_s=10), "alice", saved["refresh_token"])
    result = cli("accounts", "--json")
    assert result.exit_code == 0, result.output
    renewed = json.loads(cli.token_file.read_text())
    assert renewed["refresh_token"] != saved["refresh_token"]
    lifetime_s = session_from_token(renewed["token"]).expires_at - datetime.now(UTC)
    assert lifetime_s > timedelta(minutes=14)  # the 10-second token was replaced by a fresh one
