"""How answers look: rich tables for people, exact JSON (shared.jsonio) for scripts."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from shared import jsonio
from shared.money import money_text

# Rich lays out for 80 columns when stdout is not a terminal; tables of UUIDs need more in a pipe.
PIPE_WIDTH = 160


def _width() -> int | None:
    return None if "COLUMNS" in os.environ or sys.stdout.isatty() else PIPE_WIDTH


console = Console(highlight=False, width=_width())

STATUS_STYLES = {"committed": "green", "aborted": "red", "pending": "yellow"}


def print_json(value: Any) -> None:
    """One line of exact JSON on stdout (Decimals stay exact numbers), for pipes and scripts."""
    sys.stdout.write(jsonio.dumps(value) + "\n")
    sys.stdout.flush()


def money(amount: Any) -> str:
    if amount is None:
        return "-"
    return money_text(Decimal(amount))


def signed_money(amount: Decimal) -> str:
    return ("+" if amount > 0 else "-") + money_text(abs(amount))


def when(text: str | None, pattern: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An API timestamp as 'YYYY-MM-DD HH:MM:SS' (UTC, as the services store it)."""
    if not text:
        return "-"
    try:
        return datetime.fromisoformat(text).strftime(pattern)
    except ValueError:
        return text


def status_text(status: str, reason: str | None = None) -> str:
    style = STATUS_STYLES.get(status, "white")
    label = f"{status} ({reason})" if reason else status
    return f"[{style}]{label}[/]"


def key_value_table(title: str | None, rows: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False, box=None, padding=(0, 2, 0, 0), title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, "-" if value is None else str(value))
    return table


def accounts_table(accounts: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("account id", overflow="fold", min_width=12)
    table.add_column("balance", justify="right")
    table.add_column("pending", justify="right")
    table.add_column("opened")
    for account in accounts:
        pending = account.get("pending_change")
        table.add_row(
            str(account["account_id"]),
            money(account["balance"]),
            signed_money(pending) if pending else "",
            when(account.get("created_at"), "%Y-%m-%d"),
        )
    return table


def balance_table(account: dict[str, Any]) -> Table:
    pending = account.get("pending_change")
    rows = [
        ("account", account["account_id"]),
        ("balance", money(account["balance"])),
        ("available", money(account.get("effective_balance", account["balance"]))),
    ]
    if pending:
        rows += [("pending", signed_money(pending)), ("locked by transfer", account.get("transaction_lock"))]
    return key_value_table(None, rows)


def history_table(transfers: list[dict[str, Any]], account_id: str) -> Table:
    table = Table(title=f"Transfers of {account_id}", title_justify="left")
    table.add_column("when (UTC)", overflow="fold")
    table.add_column("transaction id", overflow="fold", min_width=12)
    table.add_column("", no_wrap=True)
    table.add_column("counterparty", overflow="fold", min_width=12)
    table.add_column("amount", justify="right")
    table.add_column("status")
    for transfer in transfers:
        outgoing = str(transfer["source_account_id"]) == account_id
        counterparty = transfer["destination_account_id"] if outgoing else transfer["source_account_id"]
        amount = -transfer["amount"] if outgoing else transfer["amount"]
        shown = signed_money(amount) if transfer["status"] == "committed" else f"[dim]{signed_money(amount)}[/]"
        table.add_row(
            when(transfer["created_at"], "%m-%d %H:%M:%S"),
            str(transfer["transaction_id"]),
            "to" if outgoing else "from",
            str(counterparty),
            shown,
            status_text(transfer["status"], transfer.get("reason")),
        )
    return table


def transfer_table(transfer: dict[str, Any]) -> Table:
    return key_value_table(
        None,
        [
            ("transaction", transfer["transaction_id"]),
            ("status", status_text(transfer["status"], transfer.get("reason"))),
            ("amount", money(transfer["amount"])),
            ("from", transfer["source_account_id"]),
            ("to", transfer["destination_account_id"]),
            ("created", when(transfer.get("created_at"))),
            ("decided", when(transfer.get("decided_at"))),
            ("completed", when(transfer.get("completed_at")) if transfer.get("completed") else "not yet"),
        ],
    )


def profile_table(customer: dict[str, Any]) -> Table:
    contact = customer.get("contact_info") or {}
    return key_value_table(
        customer.get("name"),
        [
            ("customer id", customer["customer_id"]),
            ("name", customer.get("name")),
            ("address", customer.get("address")),
            ("email", contact.get("email")),
            ("phone", contact.get("phone")),
            ("customer since", when(customer.get("created_at"))),
        ],
    )
