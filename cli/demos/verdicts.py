"""How a demo run ends: each account's expected and actual balance, the money total, and a verdict."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cli.core.render import console, money
from cli.demos.bank import AccountState

CORRECT, WRONG, UNSAFE = "correct", "wrong", "unsafe"
VERDICT_STYLES = {CORRECT: ("green", "✓"), WRONG: ("red", "✗"), UNSAFE: ("yellow", "⚠")}


@dataclass(frozen=True)
class Book:
    """One demo account at the end of a run: what its balance must be, and what the bank says."""

    label: str
    opening: Decimal
    expected: Decimal
    state: AccountState

    @property
    def exact(self) -> bool:
        return (
            self.state.balance == self.expected
            and self.state.ledger_sum == self.state.balance
            and not self.state.locked
        )


def verdict(kind: str, text: str) -> None:
    """CORRECT and WRONG judge the two-phase commit; UNSAFE shows what the racy endpoint did."""
    style, mark = VERDICT_STYLES[kind]
    console.print(f"[bold {style}]VERDICT: {mark} {text}[/]")


def print_books(books: list[Book]) -> bool:
    from rich.table import Table

    table = Table(title_justify="left")
    for column in ("account", "owner"):
        table.add_column(column, no_wrap=True)
    for column in ("opening", "expected", "actual", "ledger sum"):
        table.add_column(column, justify="right")
    table.add_column("ok")
    for book in books:
        table.add_row(
            str(book.state.account_id),
            book.label,
            money(book.opening),
            money(book.expected),
            money(book.state.balance),
            money(book.state.ledger_sum),
            "[green]✓[/]" if book.exact else ("[red]✗ locked[/]" if book.state.locked else "[red]✗[/]"),
        )
    console.print(table)
    opening = sum((book.opening for book in books), Decimal(0))
    actual = sum((book.state.balance for book in books), Decimal(0))
    expected = sum((book.expected for book in books), Decimal(0))
    mark = "[green]✓[/]" if actual == expected else "[red]✗[/]"
    console.print(f"money total: opening {money(opening)}, expected {money(expected)}, actual {money(actual)} {mark}")
    return actual == expected
