"""`demo race-condition`: two withdrawals of 100 from 150 at once, without locks and then with 2PC."""

from __future__ import annotations

from decimal import Decimal

from cli.core.render import console, money
from cli.demos.bank import DemoBank, fire_together, require_demo_endpoint
from cli.demos.verdicts import CORRECT, UNSAFE, WRONG, Book, print_books, verdict

RACE_OPENING = Decimal("150")
RACE_DEBIT = Decimal("100")


def unsafe_race(bank: DemoBank) -> None:
    """The lost update: both withdrawals succeed and one overwrites the other."""
    console.rule("1. Without locking: POST /accounts/{id}/unsafe-withdraw")
    account = bank.open_account("alice", RACE_OPENING)
    console.print(f"Opened account {account} for Alice; an admin set its balance to {money(RACE_OPENING)}.")
    console.print(f"Two withdrawals of {money(RACE_DEBIT)} fired at the same instant...")
    replies = fire_together([lambda: bank.unsafe_withdraw(account, RACE_DEBIT)] * 2)
    require_demo_endpoint(replies[0])
    for number, reply in enumerate(replies, 1):
        said = (
            f"succeeded, the service says the balance is {money(reply.data['balance'])}"
            if reply.ok
            else f"refused: {reply.error.get('message')}"
        )
        console.print(f"  withdrawal {number}: {said}")
    state = bank.state(account)
    succeeded = sum(reply.ok for reply in replies)
    withdrawn = RACE_DEBIT * succeeded
    console.print(
        f"Balance now {money(state.balance)}; withdrawn {money(withdrawn)} from {money(RACE_OPENING)}; "
        f"the ledger's rows add up to {money(state.ledger_sum)}."
    )
    if succeeded == 2 and state.balance == RACE_OPENING - RACE_DEBIT:
        verdict(
            UNSAFE,
            f"LOST UPDATE — both withdrawals of {money(RACE_DEBIT)} succeeded from "
            f"{money(RACE_OPENING)} and the balance shows {money(state.balance)}: one write overwrote "
            f"the other, so {money(RACE_DEBIT)} left the bank without the balance ever recording it.",
        )
    else:
        verdict(
            UNSAFE,
            f"no lost update this time ({succeeded} withdrawal(s) succeeded, balance "
            f"{money(state.balance)}): the race depends on timing; run it again.",
        )


def two_phase_race(bank: DemoBank) -> bool:
    """The same two debits as 2PC transfers: exactly one commits; True when the books say so."""
    console.rule("2. With two-phase commit: POST /transfers")
    source = bank.open_account("alice", RACE_OPENING)
    destination = bank.open_account("bob", Decimal(0))
    console.print(f"Opened {source} for Alice (admin set {money(RACE_OPENING)}) and {destination} for Bob (0.00).")
    console.print(f"Two transfers of {money(RACE_DEBIT)} from Alice's to Bob's fired at the same instant...")
    attempts = fire_together([lambda: bank.transfer(source, destination, RACE_DEBIT)] * 2)
    for number, attempt in enumerate(attempts, 1):
        transaction = f" ({attempt.outcome.transfer['transaction_id']})" if attempt.outcome else ""
        console.print(f"  transfer {number}: {attempt.label}{transaction}")
    states = bank.settled_states([source, destination])
    committed = sum(attempt.committed for attempt in attempts)
    books = [
        Book("Alice (source)", RACE_OPENING, RACE_OPENING - RACE_DEBIT, states[source]),
        Book("Bob (destination)", Decimal(0), RACE_DEBIT, states[destination]),
    ]
    print_books(books)
    known = all(attempt.outcome is not None for attempt in attempts)
    ok = known and committed == 1 and all(book.exact for book in books)
    if ok:
        verdict(
            CORRECT,
            f"CORRECT — exactly one transfer committed, the other was refused; the balance is "
            f"{money(states[source].balance)} and no money was created or lost.",
        )
    else:
        verdict(
            WRONG,
            f"WRONG — {committed} transfer(s) committed; source balance "
            f"{money(states[source].balance)}, expected exactly one and {money(RACE_OPENING - RACE_DEBIT)}.",
        )
    return ok
