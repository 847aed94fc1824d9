"""Who may see or move what: customers act on their own accounts, which the accounts service knows.

An account's owner never changes, so each owner the accounts service names is remembered (a bounded
LRU, AccountOwners): a customer's second transfer from an account costs no round trip. "No such
account" is not remembered: the account may be opened a moment later.

The owners not remembered are asked in batches (OwnerLookup): concurrent checks gather as the protocol's
steps do (transactions_service/batching.py), so a burst of first transfers costs one message and one
statement per batch at the accounts service, not one each. A lone check leaves at once.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from uuid import UUID

from aiohttp import web

from shared.auth import Principal
from shared.errors import ForbiddenError, NotFoundError, ServiceUnavailableError
from shared.http_client import PeerUnavailableError
from transactions_service.batching import Batch, Batcher, BatchLimits
from transactions_service.domain import Transfer
from transactions_service.participants import Participants, participant_for

# Owners remembered at most: about 100 bytes each, so 10 MB at most, and the least recently used go first.
ACCOUNT_OWNERS_CACHED_MAX = 100_000


class AccountOwners:
    """account_id -> customer_id, for the accounts looked up lately (the least recently used dropped)."""

    def __init__(self, max_size: int = ACCOUNT_OWNERS_CACHED_MAX) -> None:
        assert max_size >= 1, "a cache holds at least one owner"
        self.max_size = max_size
        self._owners: OrderedDict[UUID, UUID] = OrderedDict()

    def __len__(self) -> int:
        return len(self._owners)

    def get(self, account_id: UUID) -> UUID | None:
        owner = self._owners.get(account_id)
        if owner is not None:
            self._owners.move_to_end(account_id)
        return owner

    def remember(self, account_id: UUID, owner: UUID) -> None:
        self._owners[account_id] = owner
        self._owners.move_to_end(account_id)
        if len(self._owners) > self.max_size:
            self._owners.popitem(last=False)
        assert len(self._owners) <= self.max_size, "the cache stays within its bound"


OWNERS_PATH = "/accounts/owners"
# The most accounts one lookup names: the accounts service's OWNER_LOOKUP_MAX.
OWNER_LOOKUP_MAX = 256


class OwnerLookup:
    """owner(account_id): from the cache, else asked of the account's participant with the other checks
    waiting at that moment, one POST /accounts/owners per batch (at most OWNER_LOOKUP_MAX accounts)."""

    def __init__(self, participants: Participants, limits: BatchLimits, cache: AccountOwners | None = None) -> None:
        self.cache = cache if cache is not None else AccountOwners()
        self._participants = participants
        assert limits.items_max <= OWNER_LOOKUP_MAX, "a lookup the accounts service takes"
        self._batchers = {
            name: Batcher(f"owners-{name}", partial(self._ask, name), limits) for name in participants.names
        }

    async def owner(self, account_id: UUID) -> UUID | None:
        """The customer who owns the account, or None when there is no such account."""
        owner = self.cache.get(account_id)
        if owner is None:
            owner = await self._batchers[participant_for(account_id, self._participants.names)].submit(account_id)
            if owner is not None:
                self.cache.remember(account_id, owner)
        return owner

    @property
    def batches_sent(self) -> int:
        """Lookup messages sent so far (each names the accounts of one batch)."""
        return sum(batcher.batches_sent for batcher in self._batchers.values())

    async def close(self) -> None:
        for batcher in self._batchers.values():
            await batcher.close()

    async def _ask(self, participant: str, account_ids: list[UUID], _batch: Batch) -> list[UUID | None]:
        named = list(dict.fromkeys(account_ids))  # two checks of one account in a batch: asked once
        try:
            answer = await self._participants.clients[participant].post(
                OWNERS_PATH, {"account_ids": [str(account_id) for account_id in named]}
            )
        except PeerUnavailableError:
            raise ServiceUnavailableError("accounts service unavailable") from None
        if answer.status != 200:
            raise ServiceUnavailableError("accounts service refused the ownership check")
        owners = {UUID(row["account_id"]): UUID(row["customer_id"]) for row in answer.body["data"]["owners"]}
        return [owners.get(account_id) for account_id in account_ids]


OWNER_LOOKUP_KEY = web.AppKey("owner_lookup", OwnerLookup)


async def owner_of(app: web.Application, account_id: UUID) -> UUID | None:
    """The customer who owns the account, or None when there is no such account."""
    return await app[OWNER_LOOKUP_KEY].owner(account_id)


async def require_account_owner(app: web.Application, principal: Principal, account_id: UUID) -> None:
    """Staff and services pass; a customer must own the account."""
    if principal.role != "customer":
        return
    owner = await owner_of(app, account_id)
    if owner is None:
        raise NotFoundError("account not found", details={"account_id": str(account_id)})
    if owner != principal.customer_id:
        raise ForbiddenError("not your account", details={"account_id": str(account_id)})


async def require_transfer_reader(app: web.Application, principal: Principal, transfer: Transfer) -> None:
    """A customer may read a transfer they asked for or one touching an account they own."""
    if principal.role != "customer" or transfer.requested_by_customer_id == principal.customer_id:
        return
    for account_id in (transfer.source_account_id, transfer.destination_account_id):
        if await owner_of(app, account_id) == principal.customer_id:
            return
    raise ForbiddenError("not your transaction")
