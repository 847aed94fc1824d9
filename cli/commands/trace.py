"""`banking-cli trace ID`: the life of one transfer, from the coordinator's protocol events, as a timeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import typer

from cli.core.context import logged_in
from cli.core.inputs import parse_id

TIMELINE_WIDTH = 16
EVENT_MARKS = {
    "accepted": ("●", "cyan"),
    "prepare_sent": ("→", "blue"),
    "vote": ("←", "magenta"),
    "decision": ("◆", "bold"),
    "decision_sent": ("→", "blue"),
    "acknowledged": ("←", "green"),
    "ack_failed": ("✗", "red"),
    "completed": ("✓", "green"),
}


def trace(
    transaction_id: str = typer.Argument(..., help="The transaction id a transfer printed."),
    as_json: bool = typer.Option(False, "--json", help="Print the transfer and its events as JSON."),
) -> None:
    """Show the life of one transfer: each two-phase-commit event with its offset in ms from the first.

    Accepted, prepare sent to which participant, each vote and its reason, the decision, the decision
    sent, the acknowledgements and completion, as the coordinator logged them; with batching on, the
    batch each step rode in (its id and how many transfers it carried).

    Examples:
      banking-cli trace 4911d758-d1b5-45f4-bf11-a6ec118657de
      banking-cli trace 4911d758-d1b5-45f4-bf11-a6ec118657de --json | jq '.events[].event_type'
    """
    parsed = parse_id(transaction_id, name="transaction id")
    data = logged_in().client.get("transactions", f"/transactions/{parsed}")
    if as_json:
        from cli.core.render import print_json

        print_json(data)
        return
    from cli.core.render import console

    for renderable in timeline(data):
        console.print(renderable)


def timeline(data: dict[str, Any]) -> list[Any]:
    """The header and the table of events, ready for rich to print."""
    from rich import box
    from rich.table import Table

    from cli.core.render import money, status_text, when

    events = sorted(data.get("events") or [], key=lambda event: (event["occurred_at"], event["event_id"]))
    offsets = offsets_ms(events)
    completion = (
        "completed: every participant acknowledged"
        if data.get("completed")
        else "[yellow]not completed yet: the decision still has to reach every participant[/]"
    )
    header = (
        f"[bold]Transfer {data['transaction_id']}[/]  {status_text(data['status'], data.get('reason'))}  "
        f"[bold]{money(data['amount'])}[/]\n"
        f"from {data['source_account_id']}\nto   {data['destination_account_id']}\n"
        f"created {when(data.get('created_at'))} UTC; {completion}"
    )
    batches = batches_line(events)
    if batches:
        header += f"\n{batches}"
    table = Table(title=f"{len(events)} protocol events, ms from the first", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("+ms", justify="right", no_wrap=True)
    table.add_column("timeline", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("what happened")
    total_ms = offsets[-1] if offsets else Decimal(0)
    for event, offset in zip(events, offsets, strict=True):
        mark, style = EVENT_MARKS.get(event["event_type"], ("·", "white"))
        table.add_row(
            f"{offset:.1f}", _bar(offset, total_ms, mark, style), f"[{style}]{event['event_type']}[/]", describe(event)
        )
    return [header, table]


def offsets_ms(events: list[dict[str, Any]]) -> list[Decimal]:
    """Each event's time since the first event, in milliseconds (exact to the microsecond)."""
    if not events:
        return []
    times = [datetime.fromisoformat(event["occurred_at"]) for event in events]
    first = min(times)
    return [Decimal((moment - first) // _MICROSECOND) / 1000 for moment in times]


_MICROSECOND = timedelta(microseconds=1)


# The step each event records the batch of (banking-cli trace's batches line).
BATCH_STEPS = {
    "accepted": "accept",
    "vote": "prepare",
    "decision": "decide",
    "acknowledged": "decision sent",
    "ack_failed": "decision sent",
    "completed": "complete",
}


def batches_line(events: list[dict[str, Any]]) -> str:
    """Which batch each step of the transfer rode in and its size; empty when it travelled unbatched."""
    rode = [
        f"{BATCH_STEPS.get(event['event_type'], event['event_type'])} {_batch(details)}"
        + (f" (in a {details['rode_with']} message)" if details.get("rode_with") else "")
        for event in events
        if "batch_id" in (details := event.get("details") or {})
    ]
    return "rode in batches: " + ", ".join(rode) if rode else ""


def _batch(details: dict[str, Any]) -> str:
    return f"{str(details.get('batch_id'))[:8]} of {details.get('batch_size', '?')}"


def _bar(offset: Decimal, total: Decimal, mark: str, style: str) -> str:
    position = 0 if total <= 0 else int(offset / total * (TIMELINE_WIDTH - 1))
    return f"[dim]{'─' * position}[/][{style}]{mark}[/]"


def describe(event: dict[str, Any]) -> str:
    """A short line saying what the event means, from its type and details."""
    details = dict(event.get("details") or {})
    batch = f" [dim](batch {_batch(details)})[/]" if "batch_id" in details else ""
    details.pop("batch_id", None)
    details.pop("batch_size", None)
    return _describe(event["event_type"], details, event.get("participant") or "participant") + batch


def _describe(kind: str, details: dict[str, Any], participant: str) -> str:
    if kind == "accepted":
        from cli.core.render import money

        return f"{money(details.pop('amount', None))} requested by {details.pop('requested_by', '?')}" + _rest(details)
    if kind == "prepare_sent":
        accounts = ", ".join("…" + str(account)[-12:] for account in details.pop("accounts", []))
        return f"prepare → {participant}" + (f" for {accounts}" if accounts else "") + _rest(details)
    if kind == "vote":
        return _describe_vote(details, participant)
    if kind == "decision":
        status, reason = details.pop("status", "?"), details.pop("reason", None)
        return ("[green]COMMIT[/]" if status == "committed" else f"[red]ABORT[/]: {reason}") + _rest(details)
    if kind == "decision_sent":
        return f"{_verb(details.pop('status', '?'))} → {participant}" + _rest(details)
    if kind == "acknowledged":
        return f"{participant} acknowledged" + _latency(details) + _rest(details)
    if kind == "ack_failed":
        return f"no acknowledgement from {participant}: {details.pop('error', '?')} (recovery retries)" + _rest(details)
    if kind == "completed":
        return "all participants acknowledged" + _rest(details)
    return _rest(details).strip(" ;")


def _describe_vote(details: dict[str, Any], participant: str) -> str:
    vote, reason = details.pop("vote", "?"), details.pop("reason", None)
    rode_with = details.pop("rode_with", None)  # the vote came back in a decision message it rode
    latency = _latency(details) + (f", in a {rode_with} message" if rode_with else "")
    if vote == "yes":
        return f"{participant} voted [green]YES[/]" + latency + _rest(details)
    if vote == "none":
        return f"no vote from {participant}" + (f": {reason}" if reason else "") + latency + _rest(details)
    return f"{participant} voted [red]NO[/]" + (f": {reason}" if reason else "") + latency + _rest(details)


def _verb(status: str) -> str:
    return {"committed": "commit", "aborted": "abort"}.get(status, status)


def _latency(details: dict[str, Any]) -> str:
    latency = details.pop("latency_ms", None)
    return f" in {latency} ms" if latency is not None else ""


def _rest(details: dict[str, Any]) -> str:
    return "".join(f"; {key}={value}" for key, value in details.items() if value is not None)
