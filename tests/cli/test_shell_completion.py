"""What Tab offers in the interactive shell, from the CLI's own commands and options."""

from __future__ import annotations

import typer

from cli.main import app
from cli.shell.completion import candidates

GROUP = typer.main.get_command(app)
ACCOUNTS = ["660e8400-e29b-41d4-a716-446655440001", "660e8400-e29b-41d4-a716-446655440002"]


def offer(line_before: str, text: str) -> list[str]:
    return candidates(GROUP, line_before.split(), text, account_ids=ACCOUNTS, transaction_ids=["abc-1"])


def test_commands_and_shell_words() -> None:
    assert offer("", "tr") == ["trace ", "transaction ", "transfer "]
    assert "menu " in offer("", "") and "quit " in offer("", "")
    assert offer("help", "hi") == ["history "]


def test_options_of_the_command_being_typed() -> None:
    assert offer("transfer", "--") == ["--amount ", "--from ", "--help ", "--idempotency-key ", "--json ", "--to "]
    assert offer("demo concurrent", "--tr") == ["--transfers "]
    assert offer("demo", "") == ["concurrent ", "race-condition "]


def test_the_users_own_account_ids_after_an_account_option() -> None:
    assert offer("transfer -f", "") == [account + " " for account in ACCOUNTS]
    assert offer("balance --account", "660e8400-e29b-41d4-a716-4466554400") == [account + " " for account in ACCOUNTS]
    assert offer("history -a", "7") == []


def test_recent_transactions_for_trace_and_transaction() -> None:
    assert offer("trace", "") == ["abc-1 "]
    assert offer("transaction -i", "a") == ["abc-1 "]
