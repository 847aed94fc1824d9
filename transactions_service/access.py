"""Who may see or move what: customers act on their own accounts, which the accounts service knows."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from shared.auth import Principal
from shared.errors import ForbiddenError, NotFoundError, ServiceUnavailableError
from shared.http_client import PeerUnavailableError
from transactions_service.domain import Transfer
from transactions_service.keys import COORDINATOR_KEY


async def owner_of(app: web.Application, account_id: UUID) -> UUID | None:
    """The customer who owns the account, or None when there is no such account."""
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
