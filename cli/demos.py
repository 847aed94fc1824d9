"""`banking-cli demo race-condition` and `demo concurrent`: why the two-phase commit matters, shown live.

Each run opens fresh accounts for the demo customers, so it can run again and again and always ends
with correct verdicts. The exit code is 0 when every two-phase-commit verdict holds; the unsafe
endpoint's lost updates are the point of the demonstration, not a failure.
"""
from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import typer

from cli.config import load_config
from cli.demo_bank import AccountState, Attempt, DemoBank, check_services, fire_together, run_pool
from cli.errors import CliError
from cli.render import console, money

demo_app = typer.Typer(help="Live demonstrations: lost updates without 2PC, exact books with it.",
                       no_args_is_help=True)

LOGIN_OPTION = typer.Option(False, "--login", help="Log in as the demo users (admin/admin123, ...) instead of "
                                                   "minting tokens from JWT_SECRET.")
RACE_OPENING = Decimal("150")
RACE_DEBIT = Decimal("100")
DEFAULT_TRANSFERS = 200
MIN_HIGH_CONCURRENCY_TRANSFERS = 100
MAX_TRANSFERS = 10_000
DEFAULT_CONCURRENCY = 20
MAX_CONCURRENCY = 100
CUSTOMER_RUN_TRANSFERS = 30
MIXED_PAIRS = 10
MIXED_AMOUNT = Decimal("10")


@dataclass(frozen=True)
class Book:
    """One demo account at the end of a run: what its balance must be, and what the bank says."""
    label: str
    opening: Decimal
    expected: Decimal
    state: AccountState

    @property
    def exact(self) -> bool:
        return self.state.balance == self.expected and self.state.ledger_sum == self.state.balance \
            and not self.state.locked


def verdict(ok: bool, text: str, *, warning: bool = False) -> None:
    if warning:
        console.print(f"[bold yellow]VERDICT: ⚠ {text}[/]")
    else:
        console.print(f"[bold green]VERDICT: ✓ {text}[/]" if ok else f"[bold red]VERDICT: ✗ {text}[/]")


def _start(use_logins: bool) -> DemoBank:
    config = load_config()
    check_services(config)
    return DemoBank(config, use_logins=use_logins)


def _finish(results: list[bool]) -> None:
    if not all(results):
        raise CliError(f"{results.count(False)} two-phase-commit verdict(s) failed; see above")
    console.print("\n[bold]All two-phase-commit verdicts hold.[/]")


# --- race-condition -------------------------------------------------------------------------------------------

@demo_app.command("race-condition")
def race_condition(use_logins: bool = LOGIN_OPTION) -> None:
    """Two withdrawals of 100 from 150 at the same moment: a lost update without locks, exactly one with 2PC.

    Opens fresh accounts for Alice and Bob; needs the accounts service's demo endpoint (DEMO_ENDPOINTS=true,
    which `banking-cli up` sets).

    Example: banking-cli demo race-condition
    """
    bank = _start(use_logins)
    _unsafe_race(bank)
    _finish([_two_phase_race(bank)])


def _unsafe_race(bank: DemoBank) -> None:
    console.rule("1. Without locking: POST /accounts/{id}/unsafe-withdraw")
    account = bank.open_account("alice", RACE_OPENING)
    console.print(f"Opened account {account} for Alice; an admin set its balance to {money(RACE_OPENING)}.")
    console.print(f"Two withdrawals of {money(RACE_DEBIT)} fired at the same instant...")
    replies = fire_together([lambda: bank.unsafe_withdraw(account, RACE_DEBIT)] * 2)
    _require_demo_endpoint(replies[0].status)
    for number, reply in enumerate(replies, 1):
        said = f"succeeded, the service says the balance is {money(reply.data['balance'])}" if reply.ok \
            else f"refused: {reply.error.get('message')}"
        console.print(f"  withdrawal {number}: {said}")
    state = bank.state(account)
    succeeded = sum(reply.ok for reply in replies)
    withdrawn = RACE_DEBIT * succeeded
    console.print(f"Balance now {money(state.balance)}; withdrawn {money(withdrawn)} from {money(RACE_OPENING)}; "
                  f"the ledger's rows add up to {money(state.ledger_sum)}.")
    if succeeded == 2 and state.balance == RACE_OPENING - RACE_DEBIT:
        verdict(False, f"LOST UPDATE — both withdrawals of {money(RACE_DEBIT)} succeeded from {money(RACE_OPENING)} "
                       f"and the balance shows {money(state.balance)}: one write overwrote the other, so "
                       f"{money(RACE_DEBIT)} left the bank without the balance ever recording it.", warning=True)
    else:
        verdict(True, f"no lost update this time ({succeeded} withdrawal(s) succeeded, balance "
                      f"{money(state.balance)}): the race depends on timing; run it again.", warning=True)


def _require_demo_endpoint(status: int) -> None:
    if status in (404, 405):
        raise CliError("the accounts service does not serve the unsafe demo endpoint",
                       hint="start it with DEMO_ENDPOINTS=true, as banking-cli up does")


def _two_phase_race(bank: DemoBank) -> bool:
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
    books = [Book("Alice (source)", RACE_OPENING, RACE_OPENING - RACE_DEBIT, states[source]),
             Book("Bob (destination)", Decimal(0), RACE_DEBIT, states[destination])]
    _print_books(books)
    ok = committed == 1 and all(book.exact for book in books) and None not in [a.outcome for a in attempts]
    if ok:
        verdict(True, f"CORRECT — exactly one transfer committed, the other was refused; the balance is "
                      f"{money(states[source].balance)} and no money was created or lost.")
    else:
        verdict(False, f"WRONG — {committed} transfer(s) committed; source balance {money(states[source].balance)}, "
                       f"expected exactly one and {money(RACE_OPENING - RACE_DEBIT)}.")
    return ok


def _print_books(books: list[Book]) -> bool:
    from rich.table import Table

    table = Table(title_justify="left")
    for column in ("account", "owner"):
        table.add_column(column, no_wrap=True)
    for column in ("opening", "expected", "actual", "ledger sum"):
        table.add_column(column, justify="right")
    table.add_column("ok")
    for book in books:
        table.add_row(str(book.state.account_id), book.label, money(book.opening), money(book.expected),
                      money(book.state.balance), money(book.state.ledger_sum),
                      "[green]✓[/]" if book.exact else ("[red]✗ locked[/]" if book.state.locked else "[red]✗[/]"))
    console.print(table)
    opening = sum((book.opening for book in books), Decimal(0))
    actual = sum((book.state.balance for book in books), Decimal(0))
    expected = sum((book.expected for book in books), Decimal(0))
    mark = "[green]✓[/]" if actual == expected else "[red]✗[/]"
    console.print(f"money total: opening {money(opening)}, expected {money(expected)}, actual {money(actual)} {mark}")
    return actual == expected


# --- concurrent -----------------------------------------------------------------------------------------------

@demo_app.command("concurrent")
def concurrent(
    transfers: int = typer.Option(DEFAULT_TRANSFERS, "--transfers", "-n", min=MIN_HIGH_CONCURRENCY_TRANSFERS,
                                  max=MAX_TRANSFERS, help="Transfers in the high-concurrency run."),
    concurrency: int = typer.Option(DEFAULT_CONCURRENCY, "--concurrency", "-c", min=1, max=MAX_CONCURRENCY,
                                    help="Requests in flight at once."),
    seed: int = typer.Option(None, "--seed", help="Seed the random amounts and pairs, to repeat a run exactly."),
    use_logins: bool = LOGIN_OPTION,
) -> None:
    """Three concurrent runs, each ending with expected and actual balances, the money total and a verdict.

    1. concurrent transfers between Alice, Bob and Carol (each paying with their own login);
    2. a mixed run: 2PC transfers and unsafe withdrawals on the same account at once;
    3. a high-concurrency run of many transfers among six accounts, with a progress bar.

    Examples:
      banking-cli demo concurrent
      banking-cli demo concurrent --transfers 500 --concurrency 50 --seed 7
    """
    bank = _start(use_logins)
    rng = random.Random(seed)
    results = [_customers_run(bank, rng, concurrency), _mixed_run(bank), _high_concurrency_run(bank, rng, transfers,
                                                                                               concurrency)]
    _finish(results)


def _customers_run(bank: DemoBank, rng: random.Random, concurrency: int) -> bool:
    console.rule(f"1. {CUSTOMER_RUN_TRANSFERS} concurrent transfers between Alice, Bob and Carol")
    openings = {"alice": Decimal("1000"), "bob": Decimal("750"), "carol": Decimal("1500")}
    accounts = {owner: bank.open_account(owner, opening) for owner, opening in openings.items()}
    ring = [("alice", "bob"), ("bob", "carol"), ("carol", "alice"), ("bob", "alice"), ("carol", "bob")]
    plan = [(accounts[source], accounts[destination], Decimal(rng.randint(100, 15000)) / 100)
            for source, destination in (ring[index % len(ring)] for index in range(CUSTOMER_RUN_TRANSFERS))]
    console.print("Fresh accounts: " + ", ".join(f"{owner} {money(opening)}" for owner, opening in openings.items())
                  + f"; each transfer is sent with its payer's own token, {concurrency} at a time.")
    attempts = run_pool([lambda step=step: bank.transfer(*step, as_owner=True) for step in plan], concurrency)
    return _settle_and_judge(bank, attempts, {accounts[owner]: (owner.title(), openings[owner]) for owner in openings})


def _mixed_run(bank: DemoBank) -> bool:
    console.rule(f"2. Mixed: {MIXED_PAIRS} 2PC transfers and {MIXED_PAIRS} unsafe withdrawals on one account at once")
    source = bank.open_account("alice", Decimal("1000"))
    destination = bank.open_account("bob", Decimal(0))
    console.print(f"Alice's {source} starts at 1000.00; each operation takes {money(MIXED_AMOUNT)} from it; "
                  f"the transfers pay Bob's {destination}.")
    calls = []
    for _ in range(MIXED_PAIRS):
        calls += [lambda: bank.transfer(source, destination, MIXED_AMOUNT), lambda: bank.unsafe_withdraw(source,
                                                                                                         MIXED_AMOUNT)]
    results = fire_together(calls)
    attempts = [result for result in results if isinstance(result, Attempt)]
    withdrawals = [result for result in results if not isinstance(result, Attempt)]
    _require_demo_endpoint(withdrawals[0].status)
    committed = sum(attempt.committed for attempt in attempts)
    withdrawn = sum(reply.ok for reply in withdrawals)
    console.print(f"2PC transfers: {committed} committed, {len(attempts) - committed} refused; "
                  f"unsafe withdrawals: {withdrawn} succeeded, {len(withdrawals) - withdrawn} refused.")
    states = bank.settled_states([source, destination])
    books = [Book("Alice (both kinds)", Decimal("1000"), Decimal("1000") - MIXED_AMOUNT * (committed + withdrawn),
                  states[source]),
             Book("Bob (2PC only)", Decimal(0), MIXED_AMOUNT * committed, states[destination])]
    _print_books(books)
    two_phase_side_ok = books[1].exact and all(attempt.outcome is not None for attempt in attempts)
    drift = states[source].balance - books[0].expected
    if not two_phase_side_ok:
        verdict(False, "WRONG — the account touched only by 2PC transfers does not match its committed transfers.")
    elif drift:
        verdict(True, f"UNSAFE OPERATIONS BROKE THE BOOKS — Alice's balance is off by {money(abs(drift))} "
                      f"({'money created' if drift > 0 else 'money lost'}: lost updates), while the 2PC-only account "
                      f"is exact. Only the 2PC path is safe.", warning=True)
    else:
        verdict(True, "no lost update this run (the race depends on timing); the 2PC-only account is exact.",
                warning=True)
    return two_phase_side_ok


def _high_concurrency_run(bank: DemoBank, rng: random.Random, transfers: int, concurrency: int) -> bool:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console.rule(f"3. High concurrency: {transfers} transfers, {concurrency} in flight, six accounts")
    owners = ["alice", "alice", "bob", "bob", "carol", "carol"]
    opening = Decimal("1000")
    accounts = [bank.open_account(owner, opening) for owner in owners]
    plan = []
    for _ in range(transfers):
        source, destination = rng.sample(accounts, 2)
        plan.append((source, destination, Decimal(rng.randint(1, 1_000_000)) / 10_000))  # 0.0001 to 100.0000
    started = time.monotonic()
    with Progress(TextColumn("transfers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("transfers", total=transfers)
        attempts = run_pool([lambda step=step: bank.transfer(*step) for step in plan], concurrency,
                            on_done=lambda _attempt: progress.advance(task))
    elapsed_s = time.monotonic() - started
    console.print(f"{transfers} transfers in {elapsed_s:.1f} s ({transfers / max(elapsed_s, 0.001):.0f}/s).")
    labels = {account: (f"{owner.title()} #{index % 2 + 1}", opening) for index, (account, owner)
              in enumerate(zip(accounts, owners, strict=True))}
    return _settle_and_judge(bank, attempts, labels)


def _settle_and_judge(bank: DemoBank, attempts: list[Attempt], accounts: dict[UUID, tuple[str, Decimal]]) -> bool:
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
    total_ok = _print_books(books)
    unknown = sum(attempt.outcome is None for attempt in attempts)
    ok = total_ok and not unknown and all(book.exact for book in books)
    if ok:
        verdict(True, f"CORRECT — every balance equals its committed transfers ({outcomes_total(attempts)} "
                      f"committed), the ledger agrees, no account is left locked and no money was created or lost.")
    else:
        verdict(False, f"WRONG — {sum(not book.exact for book in books)} account(s) off, {unknown} unknown outcome(s).")
    return ok


def outcomes_total(attempts: list[Attempt]) -> int:
    return sum(attempt.committed for attempt in attempts)
