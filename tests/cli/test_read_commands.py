"""profile, accounts, balance, history, transaction, health: tables for people, exact JSON for scripts,
one-line errors with meaningful exit codes for bad input, unknown ids and services that are down."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from cli.core.errors import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_UNAVAILABLE, EXIT_USAGE
from cli.main import app
from shared import jsonio
from tests.cli.conftest import ALICE, ALICE_MAIN, BOB, BOB_MAIN, Cli

pytestmark = pytest.mark.e2e
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def test_profile_shows_the_logged_in_customer(cli: Cli) -> None:
    cli.log_in_as("alice", customer_id=ALICE)

    table = cli("profile")
    as_json = json.loads(cli("profile", "--json").stdout)

    assert table.exit_code == 0, table.output
    assert "Alice Johnson" in table.stdout and "alice@example.com" in table.stdout
    assert as_json["customer_id"] == str(ALICE)


def test_staff_name_the_customer_and_must_name_one(cli: Cli) -> None:
    cli.log_in_as("teller", role="teller")

    named = cli("profile", "-c", str(BOB), "--json")
    unnamed = cli("accounts")

    assert named.exit_code == 0
    assert json.loads(named.stdout)["name"] == "Bob Smith"
    assert unnamed.exit_code == EXIT_USAGE
    assert "--customer" in unnamed.stderr


def test_accounts_json_keeps_money_exact(cli: Cli) -> None:
    account_id = cli.open_account(ALICE, Decimal("12.3456"))
    cli.log_in_as("alice", customer_id=ALICE)

    result = cli("accounts", "--json")
    table = cli("accounts")

    assert result.exit_code == 0, result.output
    balances = {row["account_id"]: row["balance"] for row in jsonio.loads(result.stdout)}
    assert balances[account_id] == Decimal("12.3456")
    assert '"balance":12.3456' in result.stdout
    assert account_id in table.stdout and "12.3456" in table.stdout


def test_balance_of_an_account(cli: Cli) -> None:
    account_id = cli.open_account(ALICE, Decimal("70.5"))
    cli.log_in_as("alice", customer_id=ALICE)

    table = cli("balance", "-a", account_id)
    as_json = jsonio.loads(cli("balance", "-a", account_id, "--json").stdout)

    assert table.exit_code == 0, table.output
    assert "70.50" in table.stdout
    assert as_json["balance"] == Decimal("70.5")
    assert as_json["effective_balance"] == Decimal("70.5")


def test_someone_elses_account_is_refused(cli: Cli) -> None:
    cli.log_in_as("alice", customer_id=ALICE)

    result = cli("balance", "-a", BOB_MAIN)

    assert result.exit_code == EXIT_AUTH
    assert "not your account" in result.stderr


@pytest.mark.parametrize("command", [("balance", "-a"), ("history", "-a"), ("transaction", "-i"), ("trace",)])
def test_a_malformed_id_is_a_usage_error_before_any_request(
    cli: Cli, command: tuple[str, ...], closed_url: str
) -> None:
    cli.log_in_as("alice", customer_id=ALICE)

    # The services' URLs point nowhere: the id is refused before any request is made.
    result = cli(*command, "not-a-uuid", ACCOUNTS_SERVICE_URL=closed_url, TRANSACTIONS_SERVICE_URL=closed_url)

    assert result.exit_code == EXIT_USAGE
    assert "'not-a-uuid' is not a UUID" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("command", [("balance", "-a"), ("transaction", "-i"), ("trace",)])
def test_an_unknown_id_exits_not_found(cli: Cli, command: tuple[str, ...]) -> None:
    cli.log_in_as("admin", role="admin")

    result = cli(*command, UNKNOWN_ID)

    assert result.exit_code == EXIT_NOT_FOUND
    assert "not found (NOT_FOUND)" in result.stderr


def test_history_lists_transfers_both_ways(cli: Cli) -> None:
    source = cli.open_account(ALICE, Decimal("100"))
    destination = cli.open_account(ALICE, Decimal("0"))
    cli.log_in_as("alice", customer_id=ALICE)
    assert cli("transfer", "-f", source, "-t", destination, "-a", "30").exit_code == 0
    assert cli("transfer", "-f", source, "-t", destination, "-a", "500").exit_code != 0

    table = cli("history", "-a", source)
    rows = jsonio.loads(cli("history", "-a", destination, "--json").stdout)

    assert table.exit_code == 0, table.output
    assert "-30.00" in table.stdout and "committed" in table.stdout
    assert "aborted (insufficient_funds)" in table.stdout
    assert [(row["amount"], row["status"]) for row in rows] == [
        (Decimal("500"), "aborted"),
        (Decimal("30"), "committed"),
    ]


def test_transaction_shows_one_transfer(cli: Cli) -> None:
    source = cli.open_account(ALICE, Decimal("10"))
    cli.log_in_as("alice", customer_id=ALICE)
    paid = jsonio.loads(cli("transfer", "-f", source, "-t", BOB_MAIN, "-a", "2.5", "--json").stdout)

    table = cli("transaction", "-i", str(paid["transaction_id"]))
    as_json = jsonio.loads(cli("transaction", "-i", str(paid["transaction_id"]), "--json").stdout)

    assert table.exit_code == 0, table.output
    assert "committed" in table.stdout and "2.50" in table.stdout
    assert as_json["status"] == "committed"
    assert as_json["amount"] == Decimal("2.5")


def test_health_reports_every_service_and_its_database(cli: Cli) -> None:
    table = cli("health")
    rows = json.loads(cli("health", "--json").stdout)

    assert table.exit_code == 0, table.output
    assert table.stdout.count("healthy") == 3
    assert [row["service"] for row in rows] == ["customer", "accounts", "transactions"]
    assert all(row["status"] == "healthy" and row["database"] == "up" for row in rows)
    assert all(row["latency_ms"] is not None and row["database_latency_ms"] is not None for row in rows)


def test_health_with_a_service_down_exits_unavailable(cli: Cli, closed_url: str) -> None:
    result = cli("health", "--json", ACCOUNTS_SERVICE_URL=closed_url)

    assert result.exit_code == EXIT_UNAVAILABLE
    rows = {row["service"]: row for row in json.loads(result.stdout)}
    assert rows["accounts"]["status"] == "unreachable"
    assert "connection refused" in rows["accounts"]["error"]
    assert rows["customer"]["status"] == rows["transactions"]["status"] == "healthy"
    assert "1 of 3 services not healthy: accounts service" in result.stderr


def test_a_read_with_its_service_down_is_one_clean_line(cli: Cli, closed_url: str) -> None:
    cli.log_in_as("alice", customer_id=ALICE)

    result = cli("accounts", ACCOUNTS_SERVICE_URL=closed_url)

    assert result.exit_code == EXIT_UNAVAILABLE
    assert result.stderr == f"error: accounts service at {closed_url} is unavailable: connection refused\n"
    assert result.stdout == ""


def test_urls_and_token_file_from_the_config_file(cli: Cli, tmp_path) -> None:
    config_file = tmp_path / "config.toml"
    token_file = tmp_path / "elsewhere" / "token"
    config_file.write_text(
        f'accounts_service_url = "{cli.env["ACCOUNTS_SERVICE_URL"]}"\n'
        f'customer_service_url = "{cli.env["CUSTOMER_SERVICE_URL"]}"\n'
        f'token_file = "{token_file}"\n'
    )
    env = {
        key: value
        for key, value in cli.env.items()
        if key not in ("ACCOUNTS_SERVICE_URL", "CUSTOMER_SERVICE_URL", "TOKEN_FILE")
    }
    env["BANKING_CLI_CONFIG"] = str(config_file)
    configured = Cli(env, token_file)

    assert configured("login", "-u", "alice", "-p", "alice123").exit_code == 0
    result = configured("accounts", "--json")

    assert token_file.exists()
    assert result.exit_code == 0, result.output
    assert ALICE_MAIN in result.stdout


def test_a_bad_config_file_is_a_usage_error(cli: Cli, tmp_path) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text('acounts_service_url = "http://127.0.0.1:1"\n')

    result = cli("whoami", BANKING_CLI_CONFIG=str(config_file))

    assert result.exit_code == EXIT_USAGE
    assert "unknown key(s) acounts_service_url" in result.stderr


def test_shell_completion_offers_commands_and_the_users_own_account_ids(cli: Cli) -> None:
    cli.log_in_as("alice", customer_id=ALICE)

    def complete(words: str) -> list[str]:
        env = {
            **cli.env,
            "_BANKING_CLI_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
        result = cli.runner.invoke(app, [], env=env, prog_name="banking-cli")
        return result.stdout.split()

    assert {"transfer", "transaction", "trace"} <= set(complete("banking-cli tra"))
    assert complete(f"banking-cli balance -a {ALICE_MAIN[:30]}") == [ALICE_MAIN, ALICE_MAIN[:-1] + "2"]


def test_audit_shows_staff_actions_of_every_service_to_an_admin(cli: Cli) -> None:
    cli.open_account(ALICE, Decimal("7.77"))  # a teller's action
    cli.log_in_as("admin", role="admin")
    entries = json.loads(cli("audit", "--json", "-n", "500").stdout)
    assert any(
        entry["service"] == "accounts" and entry["details"].get("initial_balance") == "7.77" for entry in entries
    )
    assert "Audit log" in cli("audit").stdout
    cli.log_in_as("teller", role="teller")
    assert cli("audit").exit_code == EXIT_AUTH
