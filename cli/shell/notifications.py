"""Live notifications for the interactive shell, by polling: the fallback of the push channel (cli/shell/push.py).

A background thread polls GET /transfers/history/{account} every few seconds, unless the push channel
is live, and announces each transfer it sees decided for the first time. The first poll of an account
only learns what is already there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from cli.core.client import Client
from cli.core.errors import CliError
from cli.core.render import money
from cli.core.transfers import sent_transaction_ids

HISTORY_WINDOW = 20
MAX_ACCOUNTS_WATCHED = 50
# What the watcher polls: a client carrying the current token and the user's own account ids.
Watched = Callable[[], tuple[Client | None, list[str]]]


class TransferWatcher:
    """Polls on its own daemon thread; `announce` receives one line per new decided transfer."""

    def __init__(
        self,
        watched: Watched,
        announce: Callable[[str], None],
        poll_s: float,
        push_live: Callable[[], bool] = lambda: False,
    ) -> None:
        assert poll_s > 0, "a positive polling interval"
        self.push_live = push_live
        self.watched = watched
        self.announce = announce
        self.poll_s = poll_s
        self.statuses: dict[str, str] = {}
        self.baselined: set[str] = set()
        self.paused_by: str | None = None
        self._stop = threading.Event()
        self._poll_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="transfer-watcher", daemon=True)

    def start(self) -> None:
        """Learn what is already there before the first prompt, then poll on the thread."""
        self.poll_now()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            if not self.push_live():
                self.poll_now()

    def seen(self, transaction_id: str, status: str) -> bool:
        """Record a transfer the push channel announced; True when it was already known in that state."""
        with self._poll_lock:
            known = self.statuses.get(transaction_id) == status
            self.statuses[transaction_id] = status
            return known

    def poll_now(self) -> None:
        """One round, announcing what is new; safe from any thread (one round at a time)."""
        with self._poll_lock:
            try:
                notices = self.poll_once()
            except CliError as error:
                if self.paused_by is None:
                    self.announce(f"[yellow]notifications paused: {error.message}[/]")
                self.paused_by = error.message
                return
            if self.paused_by is not None:
                self.paused_by = None
                self.announce("[green]notifications resumed[/]")
            for notice in notices:
                self.announce(notice)

    def poll_once(self) -> list[str]:
        """One round over the watched accounts; the notices for transfers newly seen decided."""
        client, accounts = self.watched()
        if client is None:
            return []
        notices = []
        for account_id in accounts[:MAX_ACCOUNTS_WATCHED]:
            rows = client.get("transactions", f"/transfers/history/{account_id}?limit={HISTORY_WINDOW}")["transactions"]
            first_look = account_id not in self.baselined
            self.baselined.add(account_id)
            for row in reversed(rows):  # oldest first, so notices come in the order things happened
                notice = self._notice(row, set(accounts), announce=not first_look)
                if notice:
                    notices.append(notice)
        return notices

    def _notice(self, row: dict[str, Any], own: set[str], *, announce: bool) -> str | None:
        transaction_id, status = str(row["transaction_id"]), row["status"]
        if self.statuses.get(transaction_id) == status:
            return None
        self.statuses[transaction_id] = status
        if not announce or status == "pending" or transaction_id in sent_transaction_ids:
            return None
        return describe_transfer(row, own)


def describe_transfer(row: dict[str, Any], own: set[str]) -> str:
    source, destination = str(row["source_account_id"]), str(row["destination_account_id"])
    amount = money(row["amount"])
    tail = f"[dim](transaction {row['transaction_id']})[/]"
    if row["status"] != "committed":
        return f"🔔 [red]transfer of {amount} from {source} to {destination} aborted: {row.get('reason')}[/] {tail}"
    if source in own and destination in own:
        return f"🔔 moved [bold]{amount}[/] from your {source} to your {destination} {tail}"
    if destination in own:
        return f"🔔 [green]received [bold]{amount}[/] into {destination}[/] from {source} {tail}"
    return f"🔔 paid [bold]{amount}[/] from {source} to {destination} {tail}"
