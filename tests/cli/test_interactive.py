"""The interactive shell in a pseudo-terminal: log in, list accounts, transfer, complete, menu, notice, quit."""

from __future__ import annotations

import re
import sys
from decimal import Decimal
from pathlib import Path

import pexpect
import pytest

from cli.core.client import Client
from cli.core.config import load_config
from tests.cli.conftest import ALICE, BOB, Cli
from tests.conftest import ROOT, token

pytestmark = pytest.mark.e2e
TIMEOUT_S = 20
STYLE_CODES = r"(?:\x1b\[[0-9;]*m)*"  # rich colours a terminal's output: allow style codes between characters


class Terminal:
    """A pexpect child whose expectations look through terminal styling."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child

    def expect(self, text: str) -> None:
        self.child.expect(STYLE_CODES.join(re.escape(character) for character in text))

    def __getattr__(self, name: str):
        return getattr(self.child, name)


@pytest.fixture
def start_shell(subprocess_env: dict[str, str]):
    """Starts `banking-cli interactive` in a pseudo-terminal, once the test has arranged what it needs."""
    children = []

    def start() -> Terminal:
        child = pexpect.spawn(
            sys.executable,
            ["-m", "cli.main", "interactive", "--poll", "0.5"],
            cwd=str(ROOT),
            env=subprocess_env,
            encoding="utf-8",
            timeout=TIMEOUT_S,
            dimensions=(50, 200),
        )
        children.append(child)
        return Terminal(child)

    yield start
    for child in children:
        child.close(force=True)


def test_log_in_list_accounts_transfer_and_quit(start_shell, cli: Cli, subprocess_env) -> None:
    source, destination = cli.open_account(ALICE, Decimal("80")), cli.open_account(BOB, Decimal("0"))
    shell = start_shell()
    shell.expect("banking (not logged in)> ")

    shell.sendline("login -u alice -p alice123")
    shell.expect("Logged in as alice")
    shell.expect("banking alice> ")
    shell.sendline("accounts")
    shell.expect(source)
    shell.expect("banking alice> ")
    shell.sendline(f"transfer -f {source} -t {destination} -a 12.5")
    shell.expect("Transfer committed: 12.50")
    shell.expect(f"{source}  balance now 67.50")
    shell.expect("banking alice> ")
    shell.sendline("quit")
    shell.child.expect(pexpect.EOF)
    shell.close()

    assert shell.exitstatus == 0
    assert cli.balance(destination) == Decimal("12.5")
    history = (Path(subprocess_env["TOKEN_FILE"]).parent / "shell_history").read_text()
    assert "accounts" in history and "alice123" not in history


def test_completion_menu_errors_and_live_notifications(start_shell, cli: Cli, subprocess_env) -> None:
    source = cli.open_account(ALICE, Decimal("30"))
    cli.log_in_as("alice", customer_id=ALICE)
    shell = start_shell()
    shell.expect("banking alice> ")

    shell.send("who\t")  # a command name completes
    shell.expect("whoami ")
    shell.sendline("")
    shell.expect("customer")
    shell.expect("banking alice> ")
    shell.send(f"balance -a {source[:8]}\t")  # and so does one of the user's own account ids
    shell.expect(source[8:])
    shell.sendline("")
    shell.expect("30.00")
    shell.expect("banking alice> ")

    shell.sendline("transfer -f nope -t nope -a 1")  # the CLI's one-line error, and the shell carries on
    shell.expect("error: from account 'nope' is not a UUID")
    shell.expect("banking alice> ")

    shell.sendline("menu")
    shell.expect("choose a number")
    shell.sendline("1")
    shell.expect("→ banking-cli accounts")
    shell.expect(source)
    shell.expect("banking alice> ")

    # Someone else pays into Alice's account while the shell waits at its prompt.
    teller = Client(load_config(subprocess_env), token("teller"))
    bob_account = cli.open_account(BOB, Decimal("5"))
    teller.call(
        "transactions",
        "POST",
        "/transfers",
        {"source_account_id": bob_account, "destination_account_id": source, "amount": Decimal("2.25")},
    )
    shell.expect("received 2.25 into " + source)

    shell.sendeof()
    shell.child.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0
