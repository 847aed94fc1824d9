"""The everyday commands: profile, accounts, balance, transfer, history, transaction."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any
from uuid import UUID

import typer

from cli.core.client import Client
from cli.core.context import logged_in
from cli.core.errors import CliError, InputError, RefusedError
from cli.core.inputs import parse_amount, parse_id
from cli.core.render import (
    accounts_table,
    balance_table,
    console,
    history_table,
    key_value_table,
    money,
    print_json,
    profile_table,
    status_text,
    transfer_table,
)
from cli.core.transfers import TransferOutcome, send_transfer

DEFAULT_HISTORY_LIMIT = 20
MAX_HISTORY_LIMIT = 500
COMPLETION_TIMEOUT_S = 2.0

JSON_OPTION = typer.Option(False, "--json", help="Print exact JSON for scripts instead of a table.")
CUSTOMER_OPTION = typer.Option(None, "--customer", "-c", help="Staff only: the customer to show.")


def complete_account_id(incomplete: str) -> list[str]:
    """Shell completion: the logged-in customer's own account ids (nothing on any failure)."""
    try:
        context = logged_in()
        if context.session.customer_id is None:
            return []
        client = Client(replace(context.config, timeout_s=COMPLETION_TIMEOUT_S), context.session.token)
        accounts = client.get("accounts", f"/accounts/customer/{context.session.customer_id}")
    except (CliError, OSError):
        return []
    return [str(account["account_id"]) for account in accounts if str(account["account_id"]).startswith(incomplete)]


def profile(customer: str = CUSTOMER_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Show your customer profile (name, address, contact).

    Examples:
      banking-cli profile
      banking-cli profile -c 550e8400-e29b-41d4-a716-446655440002   (teller, admin)
    """
    context = logged_in()
    data = context.client.get("customer", f"/customers/{context.customer_id(customer)}")
    if as_json:
        print_json(data)
    else:
        console.print(profile_table(data))


def accounts(customer: str = CUSTOMER_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List your accounts and their balances.

    Examples:
      banking-cli accounts
      banking-cli accounts --json | jq -r '.[].account_id'
    """
    context = logged_in()
    customer_id = context.customer_id(customer)
    data = context.client.get("accounts", f"/accounts/customer/{customer_id}")
    if as_json:
        print_json(data)
    elif not data:
        console.print(f"Customer {customer_id} has no accounts.")
    else:
        total = sum(account["balance"] for account in data)
        console.print(accounts_table(data, f"Accounts of customer {customer_id}"))
        console.print(f"total: [bold]{money(total)}[/] in {len(data)} account(s)")


def balance(
    account: str = typer.Option(..., "--account", "-a", help="The account id.", autocompletion=complete_account_id),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one account's balance, and what is available while a transfer holds it.

    Example: banking-cli balance -a 660e8400-e29b-41d4-a716-446655440001
    """
    account_id = parse_id(account)
    data = logged_in().client.get("accounts", f"/accounts/{account_id}/effective-balance")
    if as_json:
        print_json(data)
    else:
        console.print(balance_table(data))


def transfer(
    from_account: str = typer.Option(
        ..., "--from", "-f", help="The account to pay from.", autocompletion=complete_account_id
    ),
    to_account: str = typer.Option(..., "--to", "-t", help="The account to pay to."),
    amount: str = typer.Option(..., "--amount", "-a", help="A positive decimal, at most 4 places: 100, 12.50."),
    idempotency_key: str = typer.Option(
        None,
        "--idempotency-key",
        "-k",
        help="Reuse the key of an earlier attempt to retry it safely; a new one is generated otherwise.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Move money between two accounts with a two-phase commit; print the outcome and both new balances.

    Exit code 0 when committed, 5 when refused (aborted: insufficient funds, account busy...).
    A lost answer is retried with the same Idempotency-Key, so a transfer is never paid twice.

    Examples:
      banking-cli transfer -a 100 -f 660e8400-e29b-41d4-a716-446655440001 \\
                                  -t 660e8400-e29b-41d4-a716-446655440003
      banking-cli transfer -a 12.50 -f ... -t ... -k KEY    (retry an earlier attempt safely)
    """
    source, destination = parse_id(from_account, name="from account"), parse_id(to_account, name="to account")
    value = parse_amount(amount)
    if source == destination:
        raise InputError("from and to must be different accounts")
    context = logged_in()
    outcome = send_transfer(context.client, source, destination, value, idempotency_key or str(uuid.uuid4()))
    balances = {str(account_id): _balance_or_none(context.client, account_id) for account_id in (source, destination)}
    if as_json:
        print_json({**outcome.transfer, "idempotency_key": outcome.idempotency_key, "balances": balances})
    else:
        _print_outcome(outcome, balances)
    if not outcome.committed:
        raise RefusedError(f"transfer aborted: {outcome.reason}; no money moved")


def _balance_or_none(client: Client, account_id: UUID) -> Any:
    """The account's balance after the transfer, or None when this login may not see it."""
    try:
        return client.get("accounts", f"/accounts/{account_id}")["balance"]
    except CliError:
        return None


def _print_outcome(outcome: TransferOutcome, balances: dict[str, Any]) -> None:
    data = outcome.transfer
    mark = "[green]✓[/]" if outcome.committed else "[red]✗[/]"
    console.print(
        f"{mark} Transfer {status_text(outcome.status, outcome.reason)}: [bold]{money(data['amount'])}[/]"
        + ("" if outcome.committed else " (no money moved)")
    )
    rows = [
        (
            label,
            f"{account_id}  balance now [bold]{money(balances[account_id])}[/]"
            if balances[account_id] is not None
            else f"{account_id}  [dim](balance not yours to see)[/]",
        )
        for label, account_id in (("from", str(data["source_account_id"])), ("to", str(data["destination_account_id"])))
    ]
    rows += [("transaction", data["transaction_id"]), ("idempotency key", outcome.idempotency_key)]
    console.print(key_value_table(None, [(f"  {label}", value) for label, value in rows]))
    console.print(f"  [dim]timeline: banking-cli trace {data['transaction_id']}[/]")


def history(
    account: str = typer.Option(..., "--account", "-a", help="The account id.", autocompletion=complete_account_id),
    limit: int = typer.Option(
        DEFAULT_HISTORY_LIMIT, "--limit", "-n", min=1, max=MAX_HISTORY_LIMIT, help="How many transfers, newest first."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List the transfers into and out of an account, newest first.

    Examples:
      banking-cli history -a 660e8400-e29b-41d4-a716-446655440001
      banking-cli history -a ...001 -n 100 --json | jq '[.[] | select(.status=="aborted")] | length'
    """
    account_id = parse_id(account)
    data = logged_in().client.get("transactions", f"/transfers/history/{account_id}?limit={limit}")["transactions"]
    if as_json:
        print_json(data)
    elif not data:
        console.print(f"No transfers for account {account_id} yet.")
    else:
        console.print(history_table(data, str(account_id)))


def transaction(
    transaction_id: str = typer.Option(..., "--id", "-i", help="The transaction id a transfer printed."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one transfer: its status, amount, accounts and times.

    Examples:
      banking-cli transaction -i 4911d758-d1b5-45f4-bf11-a6ec118657de
      banking-cli trace 4911d758-d1b5-45f4-bf11-a6ec118657de        (its protocol timeline)
    """
    parsed = parse_id(transaction_id, name="transaction id")
    data = logged_in().client.get("transactions", f"/transfers/status/{parsed}")
    if as_json:
        print_json(data)
    else:
        console.print(transfer_table(data))


AUDIT_SERVICES = ("customer", "accounts", "transactions")


def audit(
    limit: int = typer.Option(
        DEFAULT_HISTORY_LIMIT, "--limit", "-n", min=1, max=MAX_HISTORY_LIMIT, help="How many entries, newest first."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the audit log (admin): staff actions on money and customers in all three services, newest first.

    Examples:
      banking-cli audit
      banking-cli audit -n 200 --json | jq '[.[] | select(.actor=="teller")]'
    """
    client = logged_in().client
    entries = [
        {"service": service, **entry}
        for service in AUDIT_SERVICES
        for entry in client.get(service, f"/audit?limit={limit}")
    ]
    entries = sorted(entries, key=lambda entry: str(entry["occurred_at"]), reverse=True)[:limit]
    if as_json:
        print_json(entries)
        return
    from rich.table import Table

    table = Table(title="Audit log (staff actions)", title_justify="left")
    for column in ("when (UTC)", "service", "who", "action", "status", "from", "details"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        details = ", ".join(f"{key}={value}" for key, value in entry["details"].items())
        table.add_row(
            str(entry["occurred_at"])[:19],
            entry["service"],
            f"{entry['actor']} ({entry['role']})",
            entry["action"],
            str(entry["status"]),
            entry["address"],
            details,
        )
    console.print(table if entries else "No staff actions recorded yet.")
