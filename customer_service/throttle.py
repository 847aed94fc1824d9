"""Throttling failed logins: a sliding window of recent failures per username and per client address.

In-process and bounded: each replica counts on its own (N replicas allow N times the failures), which
still turns an online password guess from thousands a second into a handful a window.
"""
from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from shared.errors import TooManyRequestsError

DEFAULT_LOGIN_FAILURES_MAX = 5          # per username, per window
DEFAULT_LOGIN_ADDRESS_FAILURES_MAX = 50  # per client address (many users may share one, behind NAT)
DEFAULT_LOGIN_WINDOW_S = 300.0
TRACKED_KEYS_MAX = 100_000


class FailureWindow:
    """Failures per key within the last `window_s`; a key with `failures_max` of them waits."""

    def __init__(self, *, failures_max: int, window_s: float, clock: Callable[[], float] = time.monotonic,
                 keys_max: int = TRACKED_KEYS_MAX) -> None:
        assert failures_max >= 1, "at least one failure is allowed"
        assert window_s > 0, "the window has a length"
        self.failures_max = failures_max
        self.window_s = window_s
        self._clock = clock
        self._keys_max = keys_max
        self._failures: dict[str, deque[float]] = {}

    def retry_after_s(self, key: str) -> float:
        """0 when the key may try now; else the seconds until its oldest counted failure leaves the window."""
        failures = self._failures.get(key)
        if failures is None or len(failures) < self.failures_max:
            return 0.0
        return max(0.0, failures[0] + self.window_s - self._clock())

    def record_failure(self, key: str) -> None:
        if key not in self._failures and len(self._failures) >= self._keys_max:
            self._forget_expired()
        # Only the newest failures_max matter, so each key holds a bounded deque.
        self._failures.setdefault(key, deque(maxlen=self.failures_max)).append(self._clock())

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)

    def _forget_expired(self) -> None:
        oldest_kept = self._clock() - self.window_s
        for key in [key for key, failures in self._failures.items() if failures[-1] <= oldest_kept]:
            del self._failures[key]
        if len(self._failures) >= self._keys_max:
            self._failures.clear()  # bounded memory beats perfect memory under a flood of distinct keys


class LoginThrottle:
    """Refuses a login (429, Retry-After) while its username or its address has too many recent failures."""

    def __init__(self, *, failures_max: int = DEFAULT_LOGIN_FAILURES_MAX,
                 address_failures_max: int = DEFAULT_LOGIN_ADDRESS_FAILURES_MAX,
                 window_s: float = DEFAULT_LOGIN_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._users = FailureWindow(failures_max=failures_max, window_s=window_s, clock=clock)
        self._addresses = FailureWindow(failures_max=address_failures_max, window_s=window_s, clock=clock)

    def check(self, username: str, address: str) -> None:
        wait_s = max(self._users.retry_after_s(_user_key(username)), self._addresses.retry_after_s(address))
        if wait_s > 0:
            retry_after_s = max(1, math.ceil(wait_s))
            raise TooManyRequestsError("too many failed logins, try again later",
                                       details={"retry_after_s": retry_after_s},
                                       headers={"Retry-After": str(retry_after_s)})

    def failed(self, username: str, address: str) -> None:
        self._users.record_failure(_user_key(username))
        self._addresses.record_failure(address)

    def succeeded(self, username: str) -> None:
        """The user's own counter starts again; the address keeps its count (one good login hides no guesses)."""
        self._users.reset(_user_key(username))


def _user_key(username: str) -> str:
    return username.casefold()
