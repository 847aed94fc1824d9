"""Thin HTTP handlers: parse, call one use case, answer JSON."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any
from uuid import UUID

from aiohttp import web

from customer_service import domain, service, sessions
from customer_service.keys import ACCOUNTS_KEY, ENGINE_KEY, PASSWORDS_KEY, SETTINGS_KEY, THROTTLE_KEY
from customer_service.throttle import client_address
from shared.audit import audited
from shared.auth import STAFF_ROLES
from shared.body_validation import validated_body
from shared.callers import TOKEN_KEYS_KEY, principal_of, require_owner_or_staff, require_role
from shared.errors import ConflictError, ForbiddenError, ServiceUnavailableError
from shared.http_client import PeerUnavailableError
from shared.params import page_params, parse_uuid, path_uuid, query_int
from shared.web import ok

READERS = ("customer", *STAFF_ROLES, "service")
FEED_ID_MAX = 2**62  # BIGINT feed ids; QUERY_INTEGER reads at most 18 digits anyway


def add_routes(app: web.Application) -> None:
    app.router.add_post("/auth/login", login)
    app.router.add_post("/auth/refresh", refresh)
    app.router.add_post("/auth/logout", logout)
    app.router.add_get("/auth/revocations", revocation_feed)
    app.router.add_get("/customers", list_customers)
    app.router.add_post("/customers", create_customer)
    # Before /customers/{customer_id} so "search" is never read as an id.
    app.router.add_get("/customers/search/email", find_by_email)
    app.router.add_get("/customers/{customer_id}", get_customer)
    app.router.add_patch("/customers/{customer_id}", update_customer)
    app.router.add_delete("/customers/{customer_id}", delete_customer)
    app.router.add_get("/customers/{customer_id}/exists", customer_exists)


async def login(request: web.Request) -> web.Response:
    credentials = domain.parse_credentials(await validated_body(request))
    app = request.app
    # The peer as the socket saw it; X-Forwarded-For only from a trusted proxy (the client can forge it).
    address = client_address(request.remote, request.headers.get("X-Forwarded-For"), app[SETTINGS_KEY].trusted_proxies)
    answer = await service.login(
        app[ENGINE_KEY],
        app[PASSWORDS_KEY],
        credentials,
        jwt_secret=app[TOKEN_KEYS_KEY],
        token_ttl_s=app[SETTINGS_KEY].token_ttl_s,
        throttle=app[THROTTLE_KEY],
        address=address,
        refresh_ttl_s=app[SETTINGS_KEY].refresh_token_ttl_s,
    )
    return ok(answer, message="logged in")


async def refresh(request: web.Request) -> web.Response:
    refresh_token = domain.parse_refresh_token(await validated_body(request))
    settings = request.app[SETTINGS_KEY]
    answer = await service.refresh(
        request.app[ENGINE_KEY],
        refresh_token,
        jwt_secret=request.app[TOKEN_KEYS_KEY],
        token_ttl_s=settings.token_ttl_s,
        refresh_ttl_s=settings.refresh_token_ttl_s,
    )
    return ok(answer, message="refreshed")


async def logout(request: web.Request) -> web.Response:
    principal = require_role(request, "customer", *STAFF_ROLES)
    await sessions.logout(request.app[ENGINE_KEY], principal.session_id)
    return ok({"session_id": principal.session_id}, message="logged out")


async def revocation_feed(request: web.Request) -> web.Response:
    require_role(request, "service")
    after = query_int(request, "after", default=0, minimum=0, maximum=FEED_ID_MAX)
    limit = query_int(request, "limit", default=sessions.FEED_BATCH_MAX, minimum=1, maximum=sessions.FEED_BATCH_MAX)
    return ok(await sessions.feed(request.app[ENGINE_KEY], after, limit))


async def get_customer(request: web.Request) -> web.Response:
    principal = require_role(request, *READERS)
    customer_id = path_uuid(request, "customer_id")
    # Checked before the lookup, so another customer's id answers 403 whether or not it exists.
    if principal.role == "customer" and principal.customer_id != customer_id:
        raise ForbiddenError("not your customer record")
    return ok(service.customer_view(await service.get_customer(request.app[ENGINE_KEY], customer_id)))


@audited("customer.create")
async def create_customer(request: web.Request) -> web.Response:
    require_role(request, *STAFF_ROLES)
    body = await validated_body(request)
    new_customer = domain.parse_new_customer(body, _chosen_customer_id(body))
    row = await service.create_customer(request.app[ENGINE_KEY], request.app[PASSWORDS_KEY], new_customer)
    return ok(service.customer_view(row), status=201, message="customer created")


def _chosen_customer_id(body: dict[str, Any]) -> UUID:
    """The caller may choose the id (demo data, imports); otherwise a fresh one."""
    if body.get("customer_id") is None:
        return uuid.uuid4()
    return parse_uuid(body["customer_id"], field="customer_id")


@audited("customer.update")
async def update_customer(request: web.Request) -> web.Response:
    principal_of(request)  # 401 before any 400, as on every other route
    customer_id = path_uuid(request, "customer_id")
    require_owner_or_staff(request, customer_id)
    changes = domain.parse_customer_changes(await validated_body(request))
    row = await service.update_customer(request.app[ENGINE_KEY], customer_id, changes)
    return ok(service.customer_view(row), message="customer updated")


@audited("customer.delete")
async def delete_customer(request: web.Request) -> web.Response:
    require_role(request, "admin")
    customer_id = path_uuid(request, "customer_id")
    await _refuse_if_accounts_hold_money(request.app, customer_id)
    await service.delete_customer(request.app[ENGINE_KEY], customer_id)
    return ok({"customer_id": customer_id}, message="customer deleted")


async def _refuse_if_accounts_hold_money(app: web.Application, customer_id: UUID) -> None:
    """409 while any of the customer's accounts holds money or a pending change: deleting them would
    strand it (and the id is retired, so nobody could own those accounts again)."""
    try:
        answer = await app[ACCOUNTS_KEY].get(f"/accounts/customer/{customer_id}")
    except PeerUnavailableError:
        raise ServiceUnavailableError(
            "accounts service unavailable: cannot tell whether the accounts hold money"
        ) from None
    if answer.status != 200:
        raise ServiceUnavailableError(
            "accounts service did not list the customer's accounts", details={"status": answer.status}
        )
    holding = [
        account["account_id"]
        for account in answer.body.get("data", [])
        if Decimal(str(account.get("balance", 0))) != 0 or account.get("pending_change")
    ]
    if holding:
        raise ConflictError(
            "the customer's accounts still hold money; move it out first", details={"accounts": holding}
        )


async def list_customers(request: web.Request) -> web.Response:
    require_role(request, *STAFF_ROLES)
    limit, offset = page_params(request)
    rows = await service.list_customers(request.app[ENGINE_KEY], limit, offset)
    # The original system's shape, which its clients page through.
    return ok(
        {
            "customers": [service.customer_view(row) for row in rows],
            "pagination": {"limit": limit, "offset": offset, "count": len(rows)},
        }
    )


async def find_by_email(request: web.Request) -> web.Response:
    require_role(request, *STAFF_ROLES)
    email = domain.parse_email(request.query.get("email"))
    return ok(service.customer_view(await service.find_customer_by_email(request.app[ENGINE_KEY], email)))


async def customer_exists(request: web.Request) -> web.Response:
    principal_of(request)
    customer_id = path_uuid(request, "customer_id")
    exists = await service.customer_exists(request.app[ENGINE_KEY], customer_id)
    return ok({"customer_id": customer_id, "exists": exists})
