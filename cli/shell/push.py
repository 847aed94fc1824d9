"""The interactive shell's push channel: transfers touching the user's accounts, the moment they are decided.

A daemon thread holds one WebSocket to the coordinator (GET /ws, the token in the Authorization header),
reconnecting with bounded backoff. While it is live the poller (cli/shell/notifications.py) stands by; when it
is down, polling takes over, so nothing is missed either way.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import aiohttp

from cli.core.transfers import sent_transaction_ids
from cli.shell.notifications import describe_transfer
from shared import jsonio

RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 30.0
CONNECT_TIMEOUT_S = 5.0
# The socket's URL and the current token (None: not logged in); asked at every (re)connection.
Target = Callable[[], tuple[str, str | None]]


def notice_row(message: dict[str, Any]) -> dict[str, Any]:
    """A pushed `transfer` notice in the shape of a history row, for describe_transfer."""
    own, other = str(message["account_id"]), str(message["counterparty_account_id"])
    source, destination = (own, other) if message["direction"] == "debit" else (other, own)
    return {
        "transaction_id": message["transaction_id"],
        "source_account_id": source,
        "destination_account_id": destination,
        "amount": message["amount"],
        "status": message["status"],
        "reason": message.get("reason"),
    }


class PushListener:
    def __init__(self, target: Target, announce: Callable[[str], None], seen: Callable[[str, str], bool]) -> None:
        """`seen(transaction_id, status)` records a transfer and says whether it was already announced."""
        self.target = target
        self.announce = announce
        self.seen = seen
        self.live = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="push-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    async def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            url, token = self.target()
            if token:
                try:
                    await self._listen(url, token)
                    failures = 0
                except (TimeoutError, aiohttp.ClientError, OSError):
                    failures += 1
                finally:
                    self.live.clear()
            await asyncio.sleep(min(RECONNECT_MAX_S, RECONNECT_FIRST_S * 2 ** min(failures, 10)))

    async def _listen(self, url: str, token: str) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.ws_connect(
                url, headers={"Authorization": f"Bearer {token}"}, protocols=("banking.v1",), heartbeat=None
            ) as socket,
        ):
            while not self._stop.is_set():
                try:
                    message = await socket.receive(timeout=1.0)
                except TimeoutError:
                    if self.target()[1] != token:
                        return  # logged out or in as someone else: reconnect with the new token
                    continue
                if message.type != aiohttp.WSMsgType.TEXT:
                    return
                self._handle(jsonio.loads(message.data))

    def _handle(self, message: dict[str, Any]) -> None:
        if message.get("type") == "welcome":
            self.live.set()
        if message.get("type") != "transfer":
            return
        transaction_id = str(message["transaction_id"])
        if self.seen(transaction_id, message["status"]) or transaction_id in sent_transaction_ids:
            return
        row = notice_row(message)
        self.announce(describe_transfer(row, {str(message["account_id"])}))
