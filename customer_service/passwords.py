"""Password hashing with argon2id, run off the event loop, with equal work for known and unknown users."""

from __future__ import annotations

import asyncio

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

DEFAULT_ARGON2_TIME_COST = argon2.DEFAULT_TIME_COST
DEFAULT_ARGON2_MEMORY_KIB = argon2.DEFAULT_MEMORY_COST
DEFAULT_ARGON2_PARALLELISM = argon2.DEFAULT_PARALLELISM
# argon2 needs at least 8 KiB of memory per lane.
MIN_ARGON2_MEMORY_KIB = 8 * DEFAULT_ARGON2_PARALLELISM
# Verified when the username matches no login, so a miss costs the same time as a wrong password.
_DUMMY_PASSWORD = "not-a-password-of-anyone"


class Passwords:
    """Hashes and verifies passwords. One per app: it holds the dummy hash made with the app's cost settings."""

    def __init__(
        self, *, time_cost: int = DEFAULT_ARGON2_TIME_COST, memory_kib: int = DEFAULT_ARGON2_MEMORY_KIB
    ) -> None:
        assert time_cost >= 1, "argon2 needs at least one pass"
        assert memory_kib >= MIN_ARGON2_MEMORY_KIB, "argon2 needs 8 KiB per lane"
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=DEFAULT_ARGON2_PARALLELISM
        )
        # Same parameters as real hashes, so verifying it costs what verifying a real one costs.
        self._dummy_hash = self._hasher.hash(_DUMMY_PASSWORD)

    async def hash(self, password: str) -> str:
        # argon2 is CPU work that releases the GIL: in a thread it does not stall other requests.
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether the password matches; with no hash (unknown user) do the same work and answer False."""
        return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            matched = self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return matched and password_hash is not None
