"""Who may see or move what: customers act on their own accounts, which the accounts service knows.

An account's owner never changes, so each owner the accounts service names is remembered (a bounded
LRU, AccountOwners): a customer's second transfer from an account costs no round trip. "No such
account" is not remembered: the account may be opened a moment later.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

from aiohttp import web

from shared.auth import Principal
from shared.errors import ForbiddenError, NotFoundError, ServiceUnavailableError
from shared.http_client import PeerUnavailableError
from transactions_service.domain import Transfer
from transactions_service.keys import COORDINATOR_KEY

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


ACCOUNT_OWNERS_KEY = web.AppKey("account_owners", AccountOwners)


async def owner_of(app: web.Application, account_id: UUID) -> UUID | None:
    """The customer who owns the account, or None when there is no such account."""
    owners = app[ACCOUNT_OWNERS_KEY]
    owner = owners.get(account_id)
    if owner is None:
        owner = await _ask_owner(app, account_id)
        if owner is not None:
            owners.remember(account_id, owner)
    return owner


async def _ask_owner(app: web.Application, account_id: UUID) -> UUID | None:
    try:
        answer = await app[COORDINATOR_KEY].participants.client_for(account_id).get(f"/accounts/{account_id}")
    except PeerUnavailableError:
        raise ServiceUnavailableError("accounts service unavailable") from None
    if answer.status == 404:
        return None
    if answer.status != 200:
        raise ServiceUnavailableError("accounts service refused the ownership check")
    return UUID(answer.body["data"]["customer_id"])


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
