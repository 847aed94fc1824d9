"""Which accounts a customer owns, asked of the participants (GET /accounts/customer/{id}, service token),
remembered for a bounded time in a bounded cache, so a burst of sockets costs one question per customer."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from shared.http_client import PeerUnavailableError, ServiceClient

DEFAULT_ACCOUNTS_TTL_S = 30.0
DEFAULT_ACCOUNTS_CACHE_MAX = 10_000


class AccountsUnavailable(Exception):
    """No participant could say which accounts the customer owns."""


@dataclass
class CustomerAccounts:
    clients: Iterable[ServiceClient]
    ttl_s: float = DEFAULT_ACCOUNTS_TTL_S
    cache_max: int = DEFAULT_ACCOUNTS_CACHE_MAX
    _cache: OrderedDict[UUID, tuple[frozenset[UUID], float]] = field(default_factory=OrderedDict)

    async def of(self, customer_id: UUID, *, fresh: bool = False) -> frozenset[UUID]:
        """`fresh` asks even when a remembered answer is still good (a new socket: accounts opened since)."""
        cached = self._cache.get(customer_id)
        if not fresh and cached is not None and cached[1] > time.monotonic():
            self._cache.move_to_end(customer_id)
            return cached[0]
        accounts = await self._ask(customer_id)
        self._cache[customer_id] = (accounts, time.monotonic() + self.ttl_s)
        self._cache.move_to_end(customer_id)
        while len(self._cache) > self.cache_max:
            self._cache.popitem(last=False)  # least recently used
        return accounts

    async def _ask(self, customer_id: UUID) -> frozenset[UUID]:
        """Every participant (shard) holds some of the customer's accounts; the union is theirs."""
        answers = await asyncio.gather(
            *(client.get(f"/accounts/customer/{customer_id}") for client in self.clients), return_exceptions=True
        )
        accounts: set[UUID] = set()
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, PeerUnavailableError):
                raise answer  # a bug, not an outage
            if isinstance(answer, PeerUnavailableError) or answer.status != 200:
                raise AccountsUnavailable(f"accounts of customer {customer_id}: no answer")
            accounts.update(UUID(str(row["account_id"])) for row in answer.body["data"])
        return frozenset(accounts)
