"""Thin HTTP handlers: parse, call one use case, answer JSON."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog
from aiohttp import web

from accounts_service import participant, participant_batch, service, unsafe_demo
from accounts_service.domain import BatchEntry, Leg, Vote, in_global_order
from accounts_service.keys import CUSTOMERS_KEY, ENGINE_KEY, METRICS_KEY, RELEASE_SIGNALS_KEY, SETTINGS_KEY
from accounts_service.participant_batch import DecisionEntry, DecisionResult
from shared import failpoints
from shared.audit import audited
from shared.auth import STAFF_ROLES, Principal
from shared.body_validation import validated_body
from shared.callers import require_coordinator, require_role
from shared.database import database_unavailable
from shared.errors import ForbiddenError, NotFoundError, ServiceUnavailableError, ValidationError
from shared.http_client import PeerUnavailableError
from shared.money import parse_money, parse_signed_money
from shared.params import page_params, parse_uuid, path_uuid, require_field
from shared.web import json_response, ok

log = structlog.get_logger()

MAX_CHANGES_PER_PREPARE = 16
UNSAFE_WITHDRAW_WARNING = (
    "this endpoint is intentionally racy (read, pause, write; no lock): "
    "concurrent withdrawals lose updates. Transfers use two-phase commit."
)
READERS = ("customer", *STAFF_ROLES, "service")


def add_routes(app: web.Application, *, demo_endpoints: bool) -> None:
    app.router.add_get("/accounts/customer/{customer_id}", customer_accounts)
    app.router.add_post("/accounts", open_account)
    app.router.add_post("/accounts/owners", account_owners)
    app.router.add_get("/accounts/{account_id}", get_account)
    app.router.add_get("/accounts/{account_id}/effective-balance", effective_balance)
    app.router.add_get("/accounts/{account_id}/ledger", ledger)
    app.router.add_patch("/accounts/{account_id}/balance", adjust_balance)
    if demo_endpoints:
        app.router.add_post("/accounts/{account_id}/unsafe-withdraw", unsafe_withdraw)
    app.router.add_post("/2pc/prepare", prepare)
    app.router.add_post("/2pc/commit", commit)
    app.router.add_post("/2pc/abort", abort)
    app.router.add_post("/2pc/prepare-batch", prepare_batch)
    app.router.add_post("/2pc/commit-batch", commit_batch)
    app.router.add_post("/2pc/abort-batch", abort_batch)
    app.router.add_get("/2pc/status/{account_id}", lock_status)
    app.router.add_get("/2pc/status/{account_id}/{transaction_id}", transfer_status)


async def _readable_account(request: web.Request) -> dict[str, Any]:
    """The account in the path, if the caller may read it (owner, staff, service)."""
    principal = require_role(request, *READERS)
    row = await service.get_account(request.app[ENGINE_KEY], path_uuid(request, "account_id"))
    _check_owner(principal, row["customer_id"])
    return row


def _check_owner(principal: Principal, customer_id: UUID) -> None:
    if principal.role == "customer" and principal.customer_id != customer_id:
        raise ForbiddenError("not your account")


async def get_account(request: web.Request) -> web.Response:
    return ok(service.account_view(await _readable_account(request)))


async def effective_balance(request: web.Request) -> web.Response:
    return ok(service.effective_view(await _readable_account(request)))


async def ledger(request: web.Request) -> web.Response:
    row = await _readable_account(request)
    limit, offset = page_params(request)
    return ok(await service.ledger(request.app[ENGINE_KEY], row["account_id"], limit, offset))


async def customer_accounts(request: web.Request) -> web.Response:
    principal = require_role(request, *READERS)
    customer_id = path_uuid(request, "customer_id")
    _check_owner(principal, customer_id)
    rows = await service.customer_accounts(request.app[ENGINE_KEY], customer_id)
    return ok([service.account_view(row) for row in rows])


async def account_owners(request: web.Request) -> web.Response:
    """Who owns each of these accounts (absent: no such account); the coordinator's ownership checks, many
    per message. Not for customers: it would tell them who owns any account."""
    require_role(request, "service", *STAFF_ROLES)
    body = await validated_body(request)
    account_ids = list(dict.fromkeys(UUID(item) for item in body["account_ids"]))  # 1 to OWNER_LOOKUP_MAX UUIDs
    owners = await service.account_owners(request.app[ENGINE_KEY], account_ids)
    return ok({"owners": [{"account_id": key, "customer_id": owners[key]} for key in account_ids if key in owners]})


@audited("account.open")
async def open_account(request: web.Request) -> web.Response:
    principal = require_role(request, *STAFF_ROLES)
    body = await validated_body(request)
    customer_id = parse_uuid(require_field(body, "customer_id"), field="customer_id")
    initial_balance = parse_money(body.get("initial_balance", 0), field="initial_balance", allow_zero=True)
    _check_opening_deposit(principal, initial_balance, request.app[SETTINGS_KEY].teller_opening_deposit_max)
    await _require_customer(request.app, customer_id)
    row = await service.open_account(request.app[ENGINE_KEY], customer_id, initial_balance)
    return ok(service.account_view(row), status=201, message="account created")


def _check_opening_deposit(principal: Principal, initial_balance: Decimal, teller_max: Decimal) -> None:
    """An opening deposit creates money: a teller's is capped, more needs an admin."""
    if principal.role != "admin" and initial_balance > teller_max:
        raise ForbiddenError(
            f"a teller may open an account with at most {teller_max}; more needs an admin",
            details={"field": "initial_balance", "teller_opening_deposit_max": teller_max},
        )


async def _require_customer(app: web.Application, customer_id: UUID) -> None:
    try:
        answer = await app[CUSTOMERS_KEY].get(f"/customers/{customer_id}/exists")
    except PeerUnavailableError:
        raise ServiceUnavailableError("customer service unavailable") from None
    if answer.status != 200 or not answer.body.get("data", {}).get("exists"):
        raise NotFoundError("customer not found", details={"customer_id": str(customer_id)})


@audited("account.set_balance")
async def adjust_balance(request: web.Request) -> web.Response:
    principal = require_role(request, "admin")
    body = await validated_body(request)
    balance = parse_money(require_field(body, "balance"), field="balance", allow_zero=True)
    row = await service.adjust_balance(
        request.app[ENGINE_KEY],
        path_uuid(request, "account_id"),
        balance,
        reason=f"admin adjustment by {principal.subject}",
    )
    return ok(service.account_view(row), message="balance updated")


@audited("account.unsafe_withdraw")
async def unsafe_withdraw(request: web.Request) -> web.Response:
    require_role(request, "admin")
    body = await validated_body(request)
    amount = parse_money(require_field(body, "amount"), field="amount")
    row = await unsafe_demo.unsafe_withdraw(
        request.app[ENGINE_KEY],
        path_uuid(request, "account_id"),
        amount,
        pause_s=request.app[SETTINGS_KEY].unsafe_withdraw_pause_s,
    )
    # The original's answer: `warning` at the top level, beside data and message; its demo scripts print it.
    return json_response(
        {
            "success": True,
            "data": service.account_view(row),
            "message": "UNSAFE withdrawal (demo: no locking)",
            "warning": UNSAFE_WITHDRAW_WARNING,
        }
    )


def _parse_changes(body: dict[str, Any]) -> list[Leg]:
    """`changes: [{account_id, change}]`, or the single-leg form `account_id, amount` (signed).

    The schema (api_schema.PROTOCOL_MESSAGE) has checked the shape: 1 to MAX_CHANGES_PER_PREPARE objects,
    each with a UUID account_id and a numeric change, or an account_id with its amount. Left here: each
    amount's places and digits as written, and one change per account."""
    items = body["changes"] if "changes" in body else [{"account_id": body["account_id"], "change": body["amount"]}]
    assert 0 < len(items) <= MAX_CHANGES_PER_PREPARE, "the schema bounds the changes"
    changes = [Leg(UUID(item["account_id"]), parse_signed_money(item["change"], field="change")) for item in items]
    if len({change.account_id for change in changes}) != len(changes):
        raise ValidationError("one change per account")
    return changes


def _names_legs(body: dict[str, Any]) -> bool:
    return "changes" in body or "account_id" in body


async def _protocol_message(request: web.Request) -> tuple[UUID, dict[str, Any]]:
    require_coordinator(request)
    body = await validated_body(request)
    return UUID(body["transaction_id"]), body  # required, and a UUID, by the schema


async def prepare(request: web.Request) -> web.Response:
    transaction_id, body = await _protocol_message(request)
    vote = await participant.prepare(
        request.app[ENGINE_KEY],
        transaction_id,
        _parse_changes(body),
        busy_wait_s=request.app[SETTINGS_KEY].prepare_busy_wait_s,
        signals=request.app[RELEASE_SIGNALS_KEY],
    )
    request.app[METRICS_KEY].votes.labels("yes" if vote.yes else "no", vote.reason or "").inc()
    await failpoints.hit("after_prepare_before_answer")
    return ok(
        {
            "transaction_id": transaction_id,
            "vote": "yes" if vote.yes else "no",
            "reason": vote.reason.value if vote.reason else None,
        }
    )


async def commit(request: web.Request) -> web.Response:
    transaction_id, body = await _protocol_message(request)
    account_ids = [change.account_id for change in _parse_changes(body)] if _names_legs(body) else None
    rows = await participant.commit(
        request.app[ENGINE_KEY], transaction_id, account_ids, signals=request.app[RELEASE_SIGNALS_KEY]
    )
    request.app[METRICS_KEY].decisions.labels("commit").inc()
    await failpoints.hit("after_local_commit_before_answer")
    return ok({"transaction_id": transaction_id, "state": "committed", "legs": rows})


async def abort(request: web.Request) -> web.Response:
    transaction_id, body = await _protocol_message(request)
    changes = _parse_changes(body) if _names_legs(body) else []
    rows = await participant.abort(
        request.app[ENGINE_KEY], transaction_id, changes, signals=request.app[RELEASE_SIGNALS_KEY]
    )
    request.app[METRICS_KEY].decisions.labels("abort").inc()
    return ok({"transaction_id": transaction_id, "state": "aborted", "legs": rows})


async def _batch_message(request: web.Request) -> dict[str, Any]:
    """A batch message's body, validated (the schema bounds each list by PARTICIPANT_BATCH_MAX)."""
    require_coordinator(request)
    return await validated_body(request, max_bytes=participant_batch.PARTICIPANT_BATCH_BODY_MAX_BYTES)


def _batch_transfers(entries: list[dict[str, Any]]) -> list[tuple[UUID, list[Leg]]]:
    """A batch list's transfers: (transaction id, the legs it names), each entry shaped as a single body;
    one entry per transfer, else 400 and nothing written."""
    transfers = []
    for item in entries:
        transaction_id = parse_uuid(require_field(item, "transaction_id"), field="transaction_id")
        transfers.append((transaction_id, _parse_changes(item) if _names_legs(item) else []))
    if len({transaction_id for transaction_id, _legs in transfers}) != len(transfers):
        raise ValidationError("one entry per transfer in a batch", details={"field": "transaction_id"})
    return transfers


def _prepare_entries(transfers: list[tuple[UUID, list[Leg]]]) -> list[BatchEntry]:
    return [BatchEntry(transaction_id, tuple(in_global_order(legs))) for transaction_id, legs in transfers]


async def _vote_all(request: web.Request, entries: list[BatchEntry]) -> dict[str, Any]:
    """prepare_batch's votes as the answer names them, counted."""
    votes = await participant_batch.prepare_batch(
        request.app[ENGINE_KEY],
        entries,
        busy_wait_s=request.app[SETTINGS_KEY].prepare_busy_wait_s,
        signals=request.app[RELEASE_SIGNALS_KEY],
    )
    return _votes_body(request, entries, votes)


async def _vote_riders(request: web.Request, entries: list[BatchEntry]) -> dict[str, Any]:
    """The riders' votes, "deferred" for those that met a lock (participant_batch.prepare_riders)."""
    votes = await participant_batch.prepare_riders(
        request.app[ENGINE_KEY], entries, signals=request.app[RELEASE_SIGNALS_KEY]
    )
    return _votes_body(request, entries, votes)


def _votes_body(request: web.Request, entries: list[BatchEntry], votes: Sequence[Vote | None]) -> dict[str, Any]:
    for vote in votes:
        if vote is not None:
            request.app[METRICS_KEY].votes.labels("yes" if vote.yes else "no", vote.reason or "").inc()
    return {
        "votes": [
            {
                "transaction_id": entry.transaction_id,
                "vote": "deferred" if vote is None else ("yes" if vote.yes else "no"),
                "reason": vote.reason.value if vote is not None and vote.reason else None,
            }
            for entry, vote in zip(entries, votes, strict=True)
        ]
    }


async def prepare_batch(request: web.Request) -> web.Response:
    entries = _prepare_entries(_batch_transfers((await _batch_message(request))["transfers"]))
    votes = await _vote_all(request, entries)
    await failpoints.hit("after_prepare_before_answer")
    return ok(votes)


def _decision_entries(transfers: list[tuple[UUID, list[Leg]]]) -> list[DecisionEntry]:
    return [DecisionEntry(transaction_id, tuple(legs)) for transaction_id, legs in transfers]


def _results_body(results: list[DecisionResult]) -> dict[str, Any]:
    return {
        "results": [
            {
                "transaction_id": result.transaction_id,
                "acknowledged": result.acknowledged,
                "error": None if result.error is None else {"code": result.error.code, "message": result.error.message},
            }
            for result in results
        ]
    }


async def commit_batch(request: web.Request) -> web.Response:
    return await _decide_batch(request, "commit")


async def abort_batch(request: web.Request) -> web.Response:
    return await _decide_batch(request, "abort")


async def _decide_batch(request: web.Request, decision: str) -> web.Response:
    """Commit (or abort) each transfer of the message, then prepare the transfers riding it (`prepare`): a
    prepare waiting for an account one of these transfers held takes it with no round trip of its own, and
    one that meets another lock is deferred at once, never waited for. Both lists are checked before
    anything is written; a transfer named in both is refused (400)."""
    body = await _batch_message(request)
    entries = _decision_entries(_batch_transfers(body["transfers"]))
    riders = _prepare_entries(_batch_transfers(body.get("prepare") or []))
    if {entry.transaction_id for entry in entries} & {entry.transaction_id for entry in riders}:
        raise ValidationError("a transfer is decided or prepared, not both", details={"field": "prepare"})
    step = participant_batch.commit_batch if decision == "commit" else participant_batch.abort_batch
    results = await step(request.app[ENGINE_KEY], entries, signals=request.app[RELEASE_SIGNALS_KEY])
    request.app[METRICS_KEY].decisions.labels(decision).inc(sum(result.acknowledged for result in results))
    answer = _results_body(results)
    if riders:
        try:
            answer |= await _vote_riders(request, riders)
        except Exception as error:  # the decisions stand and are answered; the riders go unanswered
            if not (isinstance(error, ServiceUnavailableError) or database_unavailable(error)):
                raise
            log.warning("riders_unprepared", details={"transfers": len(riders), "error": type(error).__name__})
        await failpoints.hit("after_prepare_before_answer")
    if decision == "commit":
        await failpoints.hit("after_local_commit_before_answer")
    return ok(answer)


async def lock_status(request: web.Request) -> web.Response:
    require_role(request, "service", *STAFF_ROLES)
    row = await service.get_account(request.app[ENGINE_KEY], path_uuid(request, "account_id"))
    return ok({key: row[key] for key in ("account_id", "transaction_lock", "pending_change", "locked_at")})


async def transfer_status(request: web.Request) -> web.Response:
    require_role(request, "service", *STAFF_ROLES)
    account_id = path_uuid(request, "account_id")
    rows = await participant.transfer_state(request.app[ENGINE_KEY], path_uuid(request, "transaction_id"))
    leg = next((row for row in rows if row["account_id"] == account_id), None)
    if leg is None:
        raise NotFoundError("no record of this transfer for this account")
    return ok(leg)
