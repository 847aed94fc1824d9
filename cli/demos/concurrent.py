"""`demo concurrent`: three concurrent runs, each judged on expected against actual balances."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from uuid import UUID

from cli.core.client import Reply
from cli.core.render import console, money
from cli.demos.bank import Attempt, DemoBank, fire_together, require_demo_endpoint, run_pool
from cli.demos.verdicts import CORRECT, UNSAFE, WRONG, Book, print_books, verdict

CUSTOMER_RUN_TRANSFERS = 30
MIXED_PAIRS = 10
MIXED_AMOUNT = Decimal("10")
MIXED_OPENING = Decimal("1000")
CUSTOMER_OPENINGS = {"alice": Decimal("1000"), "bob": Decimal("750"), "carol": Decimal("1500")}
CUSTOMER_RING = (("alice", "bob"), ("bob", "carol"), ("carol", "alice"), ("bob", "alice"), ("carol", "bob"))
HIGH_CONCURRENCY_OWNERS = ("alice", "alice", "bob", "bob", "carol", "carol")
HIGH_CONCURRENCY_OPENING = Decimal("1000")


def customers_run(bank: DemoBank, rng: random.Random, concurrency: int) -> bool:
    """Transfers around Alice, Bob and Carol, each sent with its payer's own token; True when exact."""
    console.rule(f"1. {CUSTOMER_RUN_TRANSFERS} concurrent transfers between Alice, Bob and Carol")
    accounts = {owner: bank.open_account(owner, opening) for owner, opening in CUSTOMER_OPENINGS.items()}
    pairs = (CUSTOMER_RING[index % len(CUSTOMER_RING)] for index in range(CUSTOMER_RUN_TRANSFERS))
    plan = [
        (accounts[source], accounts[destination], Decimal(rng.randint(100, 15000)) / 100)  # 1.00 to 150.00
        for source, destination in pairs
    ]
    console.print(
        "Fresh accounts: "
        + ", ".join(f"{owner} {money(opening)}" for owner, opening in CUSTOMER_OPENINGS.items())
        + f"; each transfer is sent with its payer's own token, {concurrency} at a time."
    )
    attempts = run_pool([partial(bank.transfer, *step, as_owner=True) for step in plan], concurrency)
    labels = {accounts[owner]: (owner.title(), opening) for owner, opening in CUSTOMER_OPENINGS.items()}
    return settle_and_judge(bank, attempts, labels)


def mixed_run(bank: DemoBank) -> bool:
    """2PC transfers and unsafe withdrawals on one account at once; True when the 2PC-only side is exact."""
    console.rule(f"2. Mixed: {MIXED_PAIRS} 2PC transfers and {MIXED_PAIRS} unsafe withdrawals on one account at once")
    source, destination = bank.open_account("alice", MIXED_OPENING), bank.open_account("bob", Decimal(0))
    console.print(
        f"Alice's {source} starts at {money(MIXED_OPENING)}; each operation takes {money(MIXED_AMOUNT)} "
        f"from it; the transfers pay Bob's {destination}."
    )
    calls: list[Callable[[], Attempt | Reply]] = [
        lambda: bank.transfer(source, destination, MIXED_AMOUNT),
        lambda: bank.unsafe_withdraw(source, MIXED_AMOUNT),
    ]
    results = fire_together(calls * MIXED_PAIRS)
    attempts = [result for result in results if isinstance(result, Attempt)]
    withdrawals = [result for result in results if not isinstance(result, Attempt)]
    require_demo_endpoint(withdrawals[0])
    committed, withdrawn = sum(attempt.committed for attempt in attempts), sum(reply.ok for reply in withdrawals)
    console.print(
        f"2PC transfers: {committed} committed, {len(attempts) - committed} refused; "
        f"unsafe withdrawals: {withdrawn} succeeded, {len(withdrawals) - withdrawn} refused."
    )
    states = bank.settled_states([source, destination])
    books = [
        Book(
            "Alice (both kinds)", MIXED_OPENING, MIXED_OPENING - MIXED_AMOUNT * (committed + withdrawn), states[source]
        ),
        Book("Bob (2PC only)", Decimal(0), MIXED_AMOUNT * committed, states[destination]),
    ]
    print_books(books)
    two_phase_side_ok = books[1].exact and all(attempt.outcome is not None for attempt in attempts)
    drift = states[source].balance - books[0].expected
    if not two_phase_side_ok:
        verdict(WRONG, "WRONG — the account touched only by 2PC transfers does not match its committed transfers.")
    elif drift:
        verdict(
            UNSAFE,
            f"UNSAFE OPERATIONS BROKE THE BOOKS — Alice's balance is off by {money(abs(drift))} "
            f"({'money created' if drift > 0 else 'money lost'}: lost updates), while the 2PC-only "
            f"account is exact. Only the 2PC path is safe.",
        )
    else:
        verdict(UNSAFE, "no lost update this run (the race depends on timing); the 2PC-only account is exact.")
    return two_phase_side_ok


def high_concurrency_run(bank: DemoBank, rng: random.Random, transfers: int, concurrency: int) -> bool:
    """Many random transfers among six accounts with a progress bar; True when every balance is exact."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console.rule(f"3. High concurrency: {transfers} transfers, {concurrency} in flight, six accounts")
    accounts = [bank.open_account(owner, HIGH_CONCURRENCY_OPENING) for owner in HIGH_CONCURRENCY_OWNERS]
    plan = []
    for _ in range(transfers):
        source, destination = rng.sample(accounts, 2)
        plan.append((source, destination, Decimal(rng.randint(1, 1_000_000)) / 10_000))  # 0.0001 to 100.0000
    started = time.monotonic()
    with Progress(
        TextColumn("transfers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("transfers", total=transfers)
        attempts = run_pool(
            [partial(bank.transfer, *step) for step in plan],
            concurrency,
            on_done=lambda _attempt: progress.advance(task),
        )
    elapsed_s = time.monotonic() - started
    console.print(f"{transfers} transfers in {elapsed_s:.1f} s ({transfers / max(elapsed_s, 0.001):.0f}/s).")
    labels = {
        account: (f"{owner.title()} #{index % 2 + 1}", HIGH_CONCURRENCY_OPENING)
        for index, (account, owner) in enumerate(zip(accounts, HIGH_CONCURRENCY_OWNERS, strict=True))
    }
    return settle_and_judge(bank, attempts, labels)


def settle_and_judge(bank: DemoBank, attempts: list[Attempt], accounts: dict[UUID, tuple[str, Decimal]]) -> bool:
    """Expected balances from the committed outcomes, the bank's balances, and the verdict on them."""
    outcomes = Counter(attempt.label for attempt in attempts)
    console.print("outcomes: " + ", ".join(f"{count} {label}" for label, count in outcomes.most_common()))
    expected = {account: opening for account, (_label, opening) in accounts.items()}
    for attempt in attempts:
        if attempt.committed:
            expected[attempt.source] -= attempt.amount
            expected[attempt.destination] += attempt.amount
    states = bank.settled_states(list(accounts))
    books = [Book(label, opening, expected[account], states[account]) for account, (label, opening) in accounts.items()]
    total_ok = print_books(books)
    unknown = sum(attempt.outcome is None for attempt in attempts)
    if total_ok and not unknown and all(book.exact for book in books):
        verdict(
            CORRECT,
            f"CORRECT — every balance equals its committed transfers ({outcomes['committed']} "
            f"committed), the ledger agrees, no account is left locked and no money was created or lost.",
        )
        return True
    wrong = sum(not book.exact for book in books)
    verdict(WRONG, f"WRONG — {wrong} account(s) off, {unknown} unknown outcome(s).")
    return False
