"""Throttling logins: attempts per username and per client address, counted in the customers database.

An attempt is counted before its password is checked (one atomic upsert per key, serialized on the
row), so a burst of N parallel guesses lets at most the allowed number reach the hasher; the counts live
in the database, so every replica sees the same ones. A failure keeps its count for the window; a
success gives the address its attempt back and starts the user's count again. Windows are fixed (they
start at a key's first attempt), so at most twice the limit fits across a window's edge.

Which address a request comes from: the socket's peer, unless that peer is a trusted proxy
(TRUSTED_PROXIES), in which case the nearest untrusted address in X-Forwarded-For.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.errors import TooManyRequestsError

DEFAULT_LOGIN_FAILURES_MAX = 5  # per username, per window
DEFAULT_LOGIN_ADDRESS_FAILURES_MAX = 50  # per client address (many users may share one, behind NAT)
DEFAULT_LOGIN_WINDOW_S = 300.0
PURGE_BATCH_MAX = 100  # expired rows removed per attempt: the table stays the size of one window's keys
FORWARDED_HOPS_MAX = 32  # X-Forwarded-For entries read, nearest first
USER_PREFIX, ADDRESS_PREFIX = "user:", "address:"  # "address:" < "user:": every statement locks in one order
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_COUNT_ATTEMPT = text("""
    INSERT INTO login_attempts AS counted (throttle_key, attempts, window_started_at)
    VALUES (:address_key, 1, now()), (:user_key, 1, now())
    ON CONFLICT (throttle_key) DO UPDATE SET
        attempts = CASE WHEN counted.window_started_at <= now() - make_interval(secs => :window_s)
                        THEN 1 ELSE counted.attempts + 1 END,
        window_started_at = CASE WHEN counted.window_started_at <= now() - make_interval(secs => :window_s)
                                 THEN now() ELSE counted.window_started_at END
    RETURNING throttle_key, attempts, window_started_at,
              EXTRACT(EPOCH FROM window_started_at + make_interval(secs => :window_s) - now()) AS retry_after_s""")
_PURGE = text("""
    DELETE FROM login_attempts WHERE throttle_key IN (
        SELECT throttle_key FROM login_attempts WHERE window_started_at <= now() - make_interval(secs => :window_s)
        ORDER BY window_started_at LIMIT :batch FOR UPDATE SKIP LOCKED)""")
_FORGET_USER = text("DELETE FROM login_attempts WHERE throttle_key = :user_key")
_GIVE_BACK = text("""
    UPDATE login_attempts SET attempts = attempts - 1
    WHERE throttle_key = :address_key AND window_started_at = :window_started_at AND attempts > 0""")


@dataclass(frozen=True, slots=True)
class Attempt:
    """A counted attempt, to be given back if its password turns out right."""

    user_key: str
    address_key: str
    address_window_started_at: datetime


class LoginThrottle:
    """Refuses a login (429, Retry-After) once its username or its address is over its limit."""

    def __init__(
        self,
        *,
        failures_max: int = DEFAULT_LOGIN_FAILURES_MAX,
        address_failures_max: int = DEFAULT_LOGIN_ADDRESS_FAILURES_MAX,
        window_s: float = DEFAULT_LOGIN_WINDOW_S,
    ) -> None:
        assert failures_max >= 1 and address_failures_max >= 1, "at least one attempt is allowed"
        assert window_s > 0, "the window has a length"
        self._limits = {USER_PREFIX: failures_max, ADDRESS_PREFIX: address_failures_max}
        self._window_s = window_s

    async def attempt(self, engine: AsyncEngine, username: str, address: str) -> Attempt:
        """Count this attempt; 429 if it is one too many for the username or the address."""
        keys = {"user_key": USER_PREFIX + username.casefold(), "address_key": ADDRESS_PREFIX + address}
        async with engine.begin() as connection:
            rows = (await connection.execute(_COUNT_ATTEMPT, {**keys, "window_s": self._window_s})).all()
            await connection.execute(_PURGE, {"window_s": self._window_s, "batch": PURGE_BATCH_MAX})
        over = [row for row in rows if row.attempts > self._limit_of(row.throttle_key)]
        if over:
            retry_after_s = max(1, math.ceil(max(float(row.retry_after_s) for row in over)))
            raise TooManyRequestsError(
                "too many failed logins, try again later",
                details={"retry_after_s": retry_after_s},
                headers={"Retry-After": str(retry_after_s)},
            )
        address_row = next(row for row in rows if row.throttle_key == keys["address_key"])
        return Attempt(keys["user_key"], keys["address_key"], address_row.window_started_at)

    async def succeeded(self, engine: AsyncEngine, attempt: Attempt) -> None:
        """The user's count starts again; the address gets this attempt back (its failures stay counted)."""
        async with engine.begin() as connection:
            await connection.execute(_FORGET_USER, {"user_key": attempt.user_key})
            await connection.execute(
                _GIVE_BACK, {"address_key": attempt.address_key, "window_started_at": attempt.address_window_started_at}
            )

    def _limit_of(self, throttle_key: str) -> int:
        return self._limits[USER_PREFIX if throttle_key.startswith(USER_PREFIX) else ADDRESS_PREFIX]


def parse_trusted_proxies(raw: str) -> tuple[Network, ...]:
    """TRUSTED_PROXIES: comma-separated addresses or networks (10.0.0.0/8); ValueError names a bad one."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The client's address: the peer itself unless it is a trusted proxy; then, walking X-Forwarded-For
    from the nearest hop, the first address that is not a trusted proxy (a client can forge the rest)."""
    address = peer or "unknown"
    if not trusted or not _trusted(address, trusted) or not forwarded_for:
        return address
    hops = [hop.strip() for hop in forwarded_for.split(",")[-FORWARDED_HOPS_MAX:]]
    for hop in reversed(hops):
        if not _parses(hop):
            return address  # a malformed hop: believe nothing beyond the proxy we know
        if not _trusted(hop, trusted):
            return hop
        address = hop
    return address


def _parses(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    return _parses(address) and any(ipaddress.ip_address(address) in network for network in trusted)
