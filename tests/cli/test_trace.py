"""trace: the full protocol timeline of a committed and of an aborted transfer, with ms offsets."""

from __future__ import annotations

import os
import re
from decimal import Decimal

import pytest

from cli.commands.trace import batches_line, describe, offsets_ms
from shared import jsonio
from tests.cli.conftest import ALICE, BOB, Cli

pytestmark = pytest.mark.e2e
FULL_LIFE = ["accepted", "prepare_sent", "vote", "decision", "decision_sent", "acknowledged", "completed"]


def _transfer(cli: Cli, amount: str) -> str:
    source, destination = cli.open_account(ALICE, Decimal("50")), cli.open_account(BOB, Decimal("0"))
    cli.log_in_as("alice", customer_id=ALICE)
    result = cli("transfer", "-f", source, "-t", destination, "-a", amount, "--json")
    return str(jsonio.loads(result.stdout)["transaction_id"])


def _event_lines(output: str) -> list[str]:
    """The timeline rows in order: each starts with its offset in ms."""
    return [line.strip() for line in output.splitlines() if re.match(r"\s+\d+\.\d\s", line)]


def test_trace_of_a_committed_transfer_shows_its_whole_life(cli: Cli) -> None:
    transaction_id = _transfer(cli, "20")

    result = cli("trace", transaction_id)

    assert result.exit_code == 0, result.output
    assert f"Transfer {transaction_id}  committed  20.00" in result.stdout
    lines = _event_lines(result.stdout)
    assert [line.split()[2] for line in lines] == FULL_LIFE
    assert lines[0].startswith("0.0 ")
    assert f"20.00 requested by {ALICE}" in lines[0]  # the token's subject
    assert "prepare → accounts" in lines[1]
    assert "accounts voted YES" in lines[2]
    assert "COMMIT" in lines[3]
    assert "commit → accounts" in lines[4]
    assert "accounts acknowledged" in lines[5]
    offsets = [Decimal(line.split()[0]) for line in lines]
    assert offsets == sorted(offsets)


def test_trace_of_an_aborted_transfer_shows_the_no_vote_and_its_reason(cli: Cli) -> None:
    transaction_id = _transfer(cli, "50.01")

    result = cli("trace", transaction_id)

    assert result.exit_code == 0, result.output
    assert "aborted (insufficient_funds)" in result.stdout
    lines = _event_lines(result.stdout)
    assert [line.split()[2] for line in lines] == FULL_LIFE
    assert "accounts voted NO: insufficient_funds" in lines[2]
    assert "ABORT: insufficient_funds" in lines[3]
    assert "abort → accounts" in lines[4]


def test_trace_json_carries_every_event(cli: Cli) -> None:
    transaction_id = _transfer(cli, "1")

    data = jsonio.loads(cli("trace", transaction_id, "--json").stdout)

    assert [event["event_type"] for event in data["events"]] == FULL_LIFE
    assert data["events"][0]["details"]["amount"] == Decimal("1")


def test_offsets_are_milliseconds_from_the_first_event() -> None:
    events = [{"occurred_at": "2026-01-01T00:00:00.000500+00:00"}, {"occurred_at": "2026-01-01T00:00:00.012750+00:00"}]

    assert offsets_ms(events) == [Decimal(0), Decimal("12.25")]


def test_unknown_details_are_still_shown() -> None:
    event = {"event_type": "ack_failed", "participant": "accounts", "details": {"error": "timeout", "attempt": 2}}

    assert describe(event) == "no acknowledgement from accounts: timeout (recovery retries); attempt=2"


def test_trace_shows_the_batch_each_step_rode_in(cli: Cli) -> None:
    transaction_id = _transfer(cli, "2")

    result = cli("trace", transaction_id)

    assert result.exit_code == 0, result.output
    batched = os.environ.get("BATCH_MAX_TRANSFERS", "") != "1"
    assert ("rode in batches: accept " in result.stdout) is batched
    assert (" of 1)" in _event_lines(result.stdout)[2]) is batched  # the vote: its prepare message's batch


def test_a_batched_event_names_its_batch_and_its_size() -> None:
    event = {
        "event_type": "vote",
        "participant": "accounts",
        "details": {"vote": "yes", "latency_ms": 3, "batch_id": "5f0c2a9e41d7", "batch_size": 17},
    }
    accepted = {"event_type": "accepted", "details": {"amount": 1, "batch_id": "aa11bb22cc33", "batch_size": 4}}

    assert describe(event) == "accounts voted [green]YES[/] in 3 ms [dim](batch 5f0c2a9e of 17)[/]"
    assert batches_line([accepted, event]) == "rode in batches: accept aa11bb22 of 4, prepare 5f0c2a9e of 17"
    assert batches_line([{"event_type": "vote", "details": {"vote": "yes"}}]) == ""


def test_a_prepare_that_rode_a_decision_message_says_so() -> None:
    event = {
        "event_type": "vote",
        "participant": "accounts",
        "details": {"vote": "yes", "latency_ms": 4, "batch_id": "77aa88bb99cc", "batch_size": 2, "rode_with": "commit"},
    }

    assert describe(event) == "accounts voted [green]YES[/] in 4 ms, in a commit message [dim](batch 77aa88bb of 2)[/]"
    assert batches_line([event]) == "rode in batches: prepare 77aa88bb of 2 (in a commit message)"
