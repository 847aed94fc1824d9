"""transfer: the outcome and both new balances, exact decimals never rounded, an Idempotency-Key that
makes a retried command pay once, and exit codes for refused transfers and a coordinator that is down."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cli.core.errors import EXIT_AUTH, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_USAGE, InputError
from cli.core.inputs import parse_amount
from shared import jsonio
from tests.cli.conftest import ALICE, BOB, BOB_MAIN, Cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def accounts(cli: Cli) -> tuple[str, str]:
    """A fresh account of Alice's with 100 and one of Bob's with 0; Alice is logged in."""
    source, destination = cli.open_account(ALICE, Decimal("100")), cli.open_account(BOB, Decimal("0"))
    cli.log_in_as("alice", customer_id=ALICE)
    return source, destination


def test_transfer_prints_the_outcome_and_both_new_balances(cli: Cli, accounts: tuple[str, str]) -> None:
    source, destination = accounts
    cli.log_in_as("teller", role="teller")  # staff may see both balances

    result = cli("transfer", "-f", source, "-t", destination, "-a", "40.25")

    assert result.exit_code == 0, result.output
    assert "Transfer committed: 40.25" in result.stdout
    assert f"{source}  balance now 59.75" in result.stdout
    assert f"{destination}  balance now 40.25" in result.stdout
    assert "banking-cli trace" in result.stdout
    assert cli.balance(source) == Decimal("59.75")


def test_a_customer_sees_their_own_new_balance_only(cli: Cli, accounts: tuple[str, str]) -> None:
    source, destination = accounts

    result = jsonio.loads(cli("transfer", "-f", source, "-t", destination, "-a", "1", "--json").stdout)

    assert result["status"] == "committed"
    assert result["balances"] == {source: Decimal("99"), destination: None}


def test_four_decimal_places_are_exact(cli: Cli, accounts: tuple[str, str]) -> None:
    source, destination = accounts

    result = cli("transfer", "-f", source, "-t", destination, "-a", "0.0001", "--json")

    assert result.exit_code == 0, result.output
    assert jsonio.loads(result.stdout)["amount"] == Decimal("0.0001")
    assert cli.balance(source) == Decimal("99.9999")


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("10.12345", "more than 4 decimal places"),
        ("0", "must be more than zero"),
        ("-5", "is not a decimal number"),
        ("1,000", "is not a decimal number"),
        ("ten", "is not a decimal number"),
        ("NaN", "is not a decimal number"),
        ("1e3", "is not a decimal number"),
    ],
)
def test_a_bad_amount_is_refused_and_never_rounded(
    cli: Cli, accounts: tuple[str, str], amount: str, message: str
) -> None:
    source, destination = accounts

    result = cli("transfer", "-f", source, "-t", destination, "-a", amount)

    assert result.exit_code == EXIT_USAGE
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert cli.balance(source) == Decimal("100")


def test_same_source_and_destination_is_a_usage_error(cli: Cli, accounts: tuple[str, str]) -> None:
    source, _destination = accounts

    result = cli("transfer", "-f", source, "-t", source, "-a", "1")

    assert result.exit_code == EXIT_USAGE
    assert "different accounts" in result.stderr


def test_an_aborted_transfer_shows_why_and_exits_refused(cli: Cli, accounts: tuple[str, str]) -> None:
    source, destination = accounts

    result = cli("transfer", "-f", source, "-t", destination, "-a", "100.01")

    assert result.exit_code == EXIT_REFUSED
    assert "Transfer aborted (insufficient_funds): 100.01 (no money moved)" in result.stdout
    assert f"{source}  balance now 100.00" in result.stdout
    assert "error: transfer aborted: insufficient_funds; no money moved" in result.stderr
    assert cli.balance(source) == Decimal("100")


def test_a_retried_command_with_the_same_key_pays_once(cli: Cli, accounts: tuple[str, str]) -> None:
    source, destination = accounts
    key = "retry-of-the-same-payment-1"

    first = jsonio.loads(cli("transfer", "-f", source, "-t", destination, "-a", "30", "-k", key, "--json").stdout)
    again = jsonio.loads(cli("transfer", "-f", source, "-t", destination, "-a", "30", "-k", key, "--json").stdout)

    assert first["transaction_id"] == again["transaction_id"]
    assert again["idempotency_key"] == key
    assert cli.balance(source) == Decimal("70")
    assert cli.balance(destination) == Decimal("30")


def test_each_command_gets_its_own_key(cli: Cli, accounts: tuple[str, str]) -> None:
    source, destination = accounts

    first = jsonio.loads(cli("transfer", "-f", source, "-t", destination, "-a", "5", "--json").stdout)
    second = jsonio.loads(cli("transfer", "-f", source, "-t", destination, "-a", "5", "--json").stdout)

    assert first["idempotency_key"] != second["idempotency_key"]
    assert cli.balance(source) == Decimal("90")


def test_a_key_reused_for_another_transfer_is_refused(cli: Cli, accounts: tuple[str, str]) -> None:
    source, destination = accounts
    key = "one-key-one-payment"
    assert cli("transfer", "-f", source, "-t", destination, "-a", "10", "-k", key).exit_code == 0

    result = cli("transfer", "-f", source, "-t", destination, "-a", "11", "-k", key)

    assert result.exit_code == EXIT_REFUSED
    assert "IDEMPOTENCY_KEY_REUSED" in result.stderr
    assert cli.balance(source) == Decimal("90")


def test_paying_from_someone_elses_account_is_refused(cli: Cli, accounts: tuple[str, str]) -> None:
    source, _destination = accounts

    result = cli("transfer", "-f", BOB_MAIN, "-t", source, "-a", "1")

    assert result.exit_code == EXIT_AUTH
    assert "FORBIDDEN" in result.stderr


def test_a_coordinator_that_is_down_is_unavailable_with_a_safe_retry_hint(
    cli: Cli, accounts: tuple[str, str], closed_url: str
) -> None:
    source, destination = accounts

    result = cli("transfer", "-f", source, "-t", destination, "-a", "1", TRANSACTIONS_SERVICE_URL=closed_url)

    assert result.exit_code == EXIT_UNAVAILABLE
    assert f"transactions service at {closed_url} is unavailable: connection refused" in result.stderr
    assert "nothing is paid twice if you retry with --idempotency-key" in result.stderr
    assert "Traceback" not in result.output
    assert cli.balance(source) == Decimal("100")


@pytest.mark.parametrize(
    ("text", "amount"),
    [("100", "100"), ("12.50", "12.5"), (".5", "0.5"), ("0.0001", "0.0001"), ("1.00000", "1"), (" 7 ", "7")],
)
def test_parse_amount_is_exact(text: str, amount: str) -> None:
    assert parse_amount(text) == Decimal(amount)


@pytest.mark.parametrize("text", ["1.00001", "1000000000.0001", "", "inf", "1_000", "+1", "0x10", "1" * 41])
def test_parse_amount_refuses(text: str) -> None:
    with pytest.raises(InputError):
        parse_amount(text)


def test_a_missing_option_is_one_line_saying_where_help_is(cli: Cli) -> None:
    result = cli("transfer", "-f", "660e8400-e29b-41d4-a716-446655440001", "-a", "1")

    assert result.exit_code == EXIT_USAGE
    assert result.stderr == "error: Missing option '--to' / '-t'. (see: banking-cli transfer --help)\n"
