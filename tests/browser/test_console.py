"""The console in headless Chromium against real services: log in, transfer, watch it live, break it on purpose.

Each page's screenshot is saved under tmp/artifacts/browser (BROWSER_ARTIFACTS_DIR)."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from harness.system import LocalSystem
from tests.conftest import token

ALICE_MAIN = "660e8400-e29b-41d4-a716-446655440001"
BOB_MAIN = "660e8400-e29b-41d4-a716-446655440003"
PUSH_DEADLINE_MS = 1000
EVERY_STEP = ["accepted", "prepare_sent", "vote", "decision", "decision_sent", "acknowledged", "completed"]
VIEWPORT = {"width": 1280, "height": 860}


def balance(system: LocalSystem, account_id: str) -> str:
    """The balance exactly as the API writes it (the console must show this very text)."""
    answer = requests.get(
        f"{system.url('accounts_service')}/accounts/{account_id}",
        headers={"Authorization": f"Bearer {token('admin')}"},
        timeout=10,
    )
    text = answer.text
    start = text.index('"balance":') + len('"balance":')
    return text[start : text.index(",", start)].strip()


def log_in(chromium, system: LocalSystem, username: str, password: str):
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(system.url("web") + "/#/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.keyboard.press("Enter")  # keyboard only: the form submits from the password field
    page.wait_for_selector("#push-status:has-text('push: live')")
    return page


def balance_cell(page, account_id: str):
    return page.locator(f'tr[data-account-id="{account_id}"] td.balance')


def test_alice_sends_bob_25_bob_sees_it_live_and_the_protocol_view_shows_every_step(
    console_system: LocalSystem, chromium, artifacts: Path
) -> None:
    bob = log_in(chromium, console_system, "bob", "bob123")
    bob_before = balance(console_system, BOB_MAIN)
    balance_cell(bob, BOB_MAIN).filter(has_text=bob_before).wait_for()
    bob.screenshot(path=str(artifacts / "accounts-before.png"), full_page=True)

    alice = log_in(chromium, console_system, "alice", "alice123")
    alice.screenshot(path=str(artifacts / "accounts-alice.png"), full_page=True)
    alice.get_by_role("link", name="Transfer").click()
    alice.get_by_label("From account").select_option(ALICE_MAIN)
    alice.get_by_label("To account").fill(BOB_MAIN)
    alice.get_by_label("Amount").fill("25")
    alice.get_by_role("button", name="Send").click()
    alice.locator(".outcome.ok").filter(has_text="Committed").wait_for()
    committed_at = time.monotonic()
    assert "25" in alice.locator(".outcome").inner_text()
    alice.screenshot(path=str(artifacts / "transfer-committed.png"), full_page=True)

    bob_after = balance(console_system, BOB_MAIN)
    assert Decimal(bob_after) == Decimal(bob_before) + 25
    balance_cell(bob, BOB_MAIN).filter(has_text=bob_after).wait_for(timeout=PUSH_DEADLINE_MS)
    shown_after_s = time.monotonic() - committed_at
    assert bob.url.endswith("#/accounts"), "no reload, no navigation"
    bob.locator(".notice").filter(has_text="Credit 25").wait_for(timeout=PUSH_DEADLINE_MS)
    bob.screenshot(path=str(artifacts / "accounts-bob-credited.png"), full_page=True)
    print(f"Bob's page showed the credit {shown_after_s * 1000:.0f} ms after Alice's page showed the commit")

    alice.get_by_role("link", name="See its protocol").click()
    alice.locator("tr.event-completed").wait_for()
    steps = alice.locator("tr.event").evaluate_all("rows => rows.map(row => row.dataset.eventType)")
    assert steps == EVERY_STEP
    assert alice.locator("table.lanes th").all_inner_texts()[1:] == [
        "coordinator (transactions)",
        "participant: accounts",
    ]
    alice.screenshot(path=str(artifacts / "protocol-committed.png"), full_page=True)

    alice.get_by_role("link", name="History").click()
    alice.locator("tbody tr").first.wait_for()
    alice.screenshot(path=str(artifacts / "history.png"), full_page=True)
    bob.context.close()
    alice.context.close()


@pytest.mark.parametrize("amount", ["abc", "12.34567", "-5", "0"])
def test_a_bad_amount_shows_a_clear_error_and_moves_nothing(
    console_system: LocalSystem, chromium, artifacts: Path, amount: str
) -> None:
    before = (balance(console_system, ALICE_MAIN), balance(console_system, BOB_MAIN))
    alice = log_in(chromium, console_system, "alice", "alice123")
    alice.get_by_role("link", name="Transfer").click()
    alice.get_by_label("From account").select_option(ALICE_MAIN)
    alice.get_by_label("To account").fill(BOB_MAIN)
    alice.get_by_label("Amount").fill(amount)
    alice.get_by_role("button", name="Send").click()
    error = alice.locator(".outcome.bad")
    error.wait_for()
    assert "Failed: VALIDATION_ERROR" in error.inner_text() and "amount" in error.inner_text()
    if amount == "abc":
        alice.screenshot(path=str(artifacts / "transfer-bad-amount.png"), full_page=True)
    assert (balance(console_system, ALICE_MAIN), balance(console_system, BOB_MAIN)) == before
    alice.context.close()


def test_staff_see_locks_doubt_throughput_and_the_login_page(
    console_system: LocalSystem, chromium, artifacts: Path
) -> None:
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(console_system.url("web") + "/")
    page.get_by_label("Username").wait_for()
    page.screenshot(path=str(artifacts / "login.png"), full_page=True)
    context.close()
    teller = log_in(chromium, console_system, "teller", "teller123")
    for heading in ("Accounts locked right now", "Transfers in doubt", "Throughput", "Recovery activity"):
        teller.get_by_role("heading", name=heading).wait_for()
    teller.screenshot(path=str(artifacts / "operations.png"), full_page=True)
    teller.context.close()


def test_the_demo_panel_breaks_a_transfer_and_recovery_finishes_it(
    console_system: LocalSystem, chromium, artifacts: Path
) -> None:
    """The participant stalls after committing, past the coordinator's decision timeout: the acknowledgement
    is lost, the transfer stays unfinished, and recovery re-sends the decision until it is acknowledged."""
    admin = log_in(chromium, console_system, "admin", "admin123")
    admin.get_by_role("link", name="Break things").click()
    admin.get_by_label("Where").select_option("after_local_commit_before_answer")
    admin.get_by_label("What").select_option("stall")
    admin.get_by_label("Stall seconds").fill("2")
    admin.get_by_role("button", name="Break the next transfer").click()
    admin.locator("tr.event-ack_failed").wait_for(timeout=15_000)
    admin.locator("tr.event-completed").wait_for(timeout=30_000)
    steps = admin.locator("tr.event").evaluate_all("rows => rows.map(row => row.dataset.eventType)")
    assert steps[-3:] == ["decision_sent", "acknowledged", "completed"], steps  # recovery's re-send
    assert "ack_failed" in steps[:-3], steps  # the lost acknowledgement, before it
    admin.screenshot(path=str(artifacts / "demo-recovered.png"), full_page=True)
    admin.context.close()


def test_the_page_parses_money_exactly_where_json_parse_would_round_it(console_system: LocalSystem, chromium) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.goto(console_system.url("web") + "/")
    parsed = page.evaluate("""async () => {
        const { parseExact } = await import('/static/js/exact-json.js');
        const text = '{"amount": 12345678901234.5678, "list": [0.1, -2e3, "x\\\\"y"], "ok": true, "none": null}';
        const value = parseExact(text);
        let refused = false;
        try { parseExact('{"a": NaN}'); } catch (error) { refused = error instanceof SyntaxError; }
        return { value, rounded: String(JSON.parse(text).amount), refused };
    }""")
    context.close()
    assert parsed["value"] == {
        "amount": "12345678901234.5678",
        "list": ["0.1", "-2e3", 'x"y'],
        "ok": True,
        "none": None,
    }
    assert parsed["rounded"] != "12345678901234.5678", "JSON.parse would have shown a different amount"
    assert parsed["refused"]
