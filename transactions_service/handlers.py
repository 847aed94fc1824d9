"""Thin HTTP handlers: parse, call one use case, answer JSON."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web

from shared.audit import audited
from shared.auth import STAFF_ROLES
from shared.body_validation import validated_body
from shared.callers import principal_of, require_role
from shared.errors import TransferAbortedError, ValidationError
from shared.money import parse_money
from shared.params import page_params, path_uuid, query_int
from shared.web import ok
from transactions_service import access, service
from transactions_service.coordinator import Caller
from transactions_service.domain import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    WIRE_STATUSES,
    Transfer,
    TransferRequest,
    customer_event_view,
    status_of_wire,
    wire_status,
)
from transactions_service.keys import COORDINATOR_KEY, ENGINE_KEY
from transactions_service.protocol import ERROR_CODE_BY_REASON, TransferStatus

MOVERS = ("customer", *STAFF_ROLES)
READERS = ("customer", *STAFF_ROLES, "service")
MAX_PENDING_AGE_MINUTES = 60 * 24 * 365
# The original system's answer named the attempt that produced it; we make one attempt per request
# (an abort is final, a retry is the client's, under the same transaction_id or Idempotency-Key).
ATTEMPTS = {"retry_attempt": 1, "total_attempts": 1}
PENDING_WARNING = "transfers not finished: recovery completes them; check the participants if this persists"


def add_routes(app: web.Application) -> None:
    app.router.add_post("/transfers", create_transfer)
    app.router.add_get("/transfers/status/{transaction_id}", transfer_status)
    app.router.add_get("/transfers/history/{account_id}", account_history)
    app.router.add_get("/transactions/account/{account_id}", account_history)
    app.router.add_get("/transactions/status/{status}", transfers_by_status)
    app.router.add_get("/transactions/monitoring/pending", pending_transfers)
    app.router.add_get("/transactions/monitoring/stats", transfer_stats)
    app.router.add_get("/transactions/{transaction_id}", transaction_with_events)
    app.router.add_get("/transactions/{transaction_id}/outcome", transfer_outcome)


def parse_transfer_request(body: dict[str, Any]) -> TransferRequest:
    """A body the document's schema passed (api_schema.NEW_TRANSFER): the ids are there and UUIDs, the amount
    a number or numeric text. What a schema cannot say is checked here: the amount's places and digits as
    written, and two different accounts."""
    source, destination = UUID(body["source_account_id"]), UUID(body["destination_account_id"])
    amount = parse_money(body["amount"], field="amount")
    if source == destination:
        raise ValidationError("source and destination must be different accounts")
    named = body.get("transaction_id")
    transaction_id = None if named is None else UUID(named)
    return TransferRequest(source, destination, amount, transaction_id)


def idempotency_key_of(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise ValidationError(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters")
    return key


def transfer_answer(transfer: Transfer) -> web.Response:
    """200 with the transfer when committed; 409 with the abort reason as the error code otherwise."""
    view = {**transfer.view(), **ATTEMPTS}
    if transfer.status is TransferStatus.ABORTED:
        assert transfer.reason is not None, "an abort has a reason"
        raise TransferAbortedError(
            f"transfer aborted: {transfer.reason.value}", transfer=view, code=ERROR_CODE_BY_REASON[transfer.reason]
        )
    return ok(view, message=f"transfer {wire_status(transfer.status)}")


def transfer_page(transfers: list[Transfer], limit: int, offset: int) -> dict[str, Any]:
    """The original system's list shape: `transactions` and `count`, and `pagination` as it paged them."""
    return {
        "transactions": [transfer.view() for transfer in transfers],
        "count": len(transfers),
        "pagination": {"limit": limit, "offset": offset, "count": len(transfers)},
    }


@audited("transfer.create")
async def create_transfer(request: web.Request) -> web.Response:
    principal = require_role(request, *MOVERS)
    transfer_request = parse_transfer_request(await validated_body(request))
    key = idempotency_key_of(request)
    await access.require_account_owner(request.app, principal, transfer_request.source_account_id)
    transfer = await request.app[COORDINATOR_KEY].transfer(
        transfer_request, Caller(principal.subject, principal.customer_id), key
    )
    return transfer_answer(transfer)


async def _readable_transfer(request: web.Request) -> Transfer:
    principal = require_role(request, *READERS)
    transfer = await service.get_transfer(request.app[ENGINE_KEY], path_uuid(request, "transaction_id"))
    await access.require_transfer_reader(request.app, principal, transfer)
    return transfer


async def transfer_status(request: web.Request) -> web.Response:
    return ok((await _readable_transfer(request)).view())


async def transaction_with_events(request: web.Request) -> web.Response:
    transfer = await _readable_transfer(request)
    events = await service.events_of(request.app[ENGINE_KEY], transfer.transaction_id)
    principal = principal_of(request)
    if principal.role == "customer":
        requester = principal.customer_id == transfer.requested_by_customer_id
        events = [customer_event_view(event, requester=requester) for event in events]
    return ok({**transfer.view(), "events": events})


async def transfer_outcome(request: web.Request) -> web.Response:
    """For a participant in doubt: the stored decision (404 TRANSFER_NOT_FOUND means no record: presume abort)."""
    require_role(request, "service", *STAFF_ROLES)
    transfer = await service.outcome_of(request.app[ENGINE_KEY], path_uuid(request, "transaction_id"))
    return ok(
        {
            "transaction_id": transfer.transaction_id,
            "status": wire_status(transfer.status),
            "completed": transfer.completed,
        }
    )


async def account_history(request: web.Request) -> web.Response:
    principal = require_role(request, *READERS)
    account_id = path_uuid(request, "account_id")
    limit, offset = page_params(request)
    await access.require_account_owner(request.app, principal, account_id)
    transfers = await service.account_history(request.app[ENGINE_KEY], account_id, limit, offset)
    # The original answered {.., pagination} on /transfers/history and {.., count} on /transactions/account.
    return ok({"account_id": account_id, **transfer_page(transfers, limit, offset)})


async def transfers_by_status(request: web.Request) -> web.Response:
    require_role(request, *STAFF_ROLES)
    try:
        status = status_of_wire(request.match_info["status"])
    except ValueError:
        raise ValidationError(f"status must be one of {list(WIRE_STATUSES)} (or preparing)") from None
    limit, offset = page_params(request)
    transfers = await service.by_status(request.app[ENGINE_KEY], status, limit, offset)
    return ok({"status": wire_status(status), **transfer_page(transfers, limit, offset)})


async def pending_transfers(request: web.Request) -> web.Response:
    require_role(request, "admin")
    minutes = query_int(request, "olderThanMinutes", default=5, maximum=MAX_PENDING_AGE_MINUTES)
    transfers = await service.unfinished_older_than(request.app[ENGINE_KEY], minutes)
    answer = {
        "pending_transactions": [transfer.view() for transfer in transfers],
        "count": len(transfers),
        "older_than_minutes": minutes,
    }
    return ok({**answer, "warning": PENDING_WARNING} if transfers else answer)


async def transfer_stats(request: web.Request) -> web.Response:
    require_role(request, "admin")
    return ok(await service.stats(request.app[ENGINE_KEY]))
