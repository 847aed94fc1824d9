"""Revoked sessions and users, as every service knows them: fed from customer_service's revocation feed
(GET /auth/revocations) on a fixed tick, checked in memory on every request (shared.auth.principal_of).

A session (claim `sid`, one login and its refreshes) is revoked by logout or by reusing a spent refresh
token; a user (claim `sub`) by deleting them: every token issued until then is refused. Each service
polls every DEFAULT_REVOCATION_POLL_S, so a revoked token is refused everywhere within about that long.
If the feed cannot be read the list keeps what it knew (tokens stay short: 15 minutes) and says so in
the log. Entries older than an access token's life are forgotten: no token they could refuse is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from shared.auth import DEFAULT_USER_TOKEN_TTL_S, Principal, RevocationCheck
from shared.callers import REVOCATION_KEY

log = structlog.get_logger()

DEFAULT_REVOCATION_POLL_S = 1.0
REVOCATION_BATCH_MAX = 1000  # entries read per request to the feed
REVOCATION_ROUNDS_MAX = 10  # feed requests per tick when it has more: a backlog drains, bounded
FORGET_AFTER_S = DEFAULT_USER_TOKEN_TTL_S + 60
FEED_PATH = "/auth/revocations"


@dataclass(frozen=True, slots=True)
class Revocation:
    revocation_id: int
    session_id: str | None
    subject: str | None
    revoked_at: float  # epoch seconds

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Revocation:
        revoked_at = entry["revoked_at"]
        moment = (
            revoked_at.timestamp()
            if isinstance(revoked_at, datetime)
            else datetime.fromisoformat(str(revoked_at)).timestamp()
        )
        return cls(
            int(entry["revocation_id"]),
            entry.get("session_id") and str(entry["session_id"]),
            entry.get("subject"),
            moment,
        )


class RevocationList(RevocationCheck):
    """What this process knows is revoked; `after` is the last feed entry it has applied."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._sessions: dict[str, float] = {}
        self._subjects: dict[str, float] = {}
        self._clock = clock
        self.after = 0

    def is_revoked(self, principal: Principal) -> bool:
        if principal.session_id is not None and principal.session_id in self._sessions:
            return True
        cutoff = self._subjects.get(principal.subject)
        return cutoff is not None and principal.issued_at <= cutoff

    def apply(self, entries: list[Revocation]) -> None:
        for entry in entries:
            if entry.session_id:
                self._sessions[entry.session_id] = entry.revoked_at
            if entry.subject:
                self._subjects[entry.subject] = max(entry.revoked_at, self._subjects.get(entry.subject, 0.0))
            self.after = max(self.after, entry.revocation_id)
        self._forget_old()

    def _forget_old(self) -> None:
        oldest = self._clock() - FORGET_AFTER_S
        for known in (self._sessions, self._subjects):
            for key in [key for key, revoked_at in known.items() if revoked_at < oldest]:
                del known[key]


Fetch = Callable[[web.Application, int, int], Awaitable[list[dict[str, Any]]]]


def revocation_context(fetch: Fetch, poll_s: float = DEFAULT_REVOCATION_POLL_S):
    """A cleanup_ctx: a RevocationList in the app, kept current by a task that reads `fetch(app, after, limit)`."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        revocations = RevocationList()
        app[REVOCATION_KEY] = revocations
        task = asyncio.create_task(_poll(app, revocations, fetch, poll_s))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


async def _poll(app: web.Application, revocations: RevocationList, fetch: Fetch, poll_s: float) -> None:
    while True:
        try:
            for _ in range(REVOCATION_ROUNDS_MAX):
                entries = [
                    Revocation.from_json(entry) for entry in await fetch(app, revocations.after, REVOCATION_BATCH_MAX)
                ]
                revocations.apply(entries)
                if len(entries) < REVOCATION_BATCH_MAX:
                    break
        except Exception as error:  # the feed is down or answered badly: keep what we know, try next tick
            log.warning("revocation_feed_unreadable", details={"error": type(error).__name__})
        await asyncio.sleep(poll_s)


def http_fetch(client_key: web.AppKey) -> Fetch:
    """Read the feed from customer_service with the app's client for it (under `client_key`)."""

    async def fetch(app: web.Application, after: int, limit: int) -> list[dict[str, Any]]:
        answer = await app[client_key].get(f"{FEED_PATH}?after={after}&limit={limit}")
        if answer.status != 200:
            raise RuntimeError(f"revocation feed answered {answer.status}")
        return answer.body["data"]

    return fetch
