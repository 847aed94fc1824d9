"""The audit log: every staff action that creates or changes money or customers, append-only, per service.

Each service keeps its own `audit_log` table (its migration runs AUDIT_LOG_DDL) and serves it to admins
at GET /audit. A handler decorated with `audited(action)` records who (the token's subject and role),
what (the action, method, path, status and the money or ids in the body), when, and from which address,
whenever a teller or an admin calls it, allowed or refused. A database trigger refuses UPDATE and DELETE.
"""

from __future__ import annotations

import functools
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy import text

from shared import jsonio
from shared.auth import STAFF_ROLES, Principal
from shared.body_validation import VALIDATED_BODY_KEY
from shared.callers import PRINCIPAL_KEY, require_role
from shared.database import ENGINE_KEY
from shared.errors import ApiError
from shared.params import page_params
from shared.web import Handler, ok

log = structlog.get_logger()

AUDIT_PATH = "/audit"
# The body fields worth keeping: amounts and the ids they move between, never a password or free text.
AUDITED_FIELDS = (
    "customer_id",
    "initial_balance",
    "balance",
    "amount",
    "source_account_id",
    "destination_account_id",
    "username",
)
AUDITED_VALUE_MAX = 80  # characters kept of each recorded field

AUDIT_LOG_DDL = (
    """CREATE TABLE audit_log (
        audit_id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        actor       TEXT NOT NULL,
        role        TEXT NOT NULL,
        action      TEXT NOT NULL,
        method      TEXT NOT NULL,
        path        TEXT NOT NULL,
        status      INTEGER NOT NULL,
        address     TEXT NOT NULL,
        details     JSONB NOT NULL DEFAULT '{}'::jsonb)""",
    """CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
)
AUDIT_LOG_DROP = ("DROP TABLE audit_log", "DROP FUNCTION audit_log_append_only()")

_INSERT = text("""
    INSERT INTO audit_log (actor, role, action, method, path, status, address, details)
    VALUES (:actor, :role, :action, :method, :path, :status, :address, CAST(:details AS JSONB))""")
_SELECT = text("""
    SELECT audit_id, occurred_at, actor, role, action, method, path, status, address, details
    FROM audit_log ORDER BY audit_id DESC LIMIT :limit OFFSET :offset""")


def audited(action: str):
    """Record each staff call of this handler in the audit log, with the status it got."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            try:
                response = await handler(request)
            except ApiError as error:
                await _record_after(request, action, error.status)
                raise
            await _record_after(request, action, response.status)
            return response

        return wrapper

    return decorate


async def _record_after(request: web.Request, action: str, status: int) -> None:
    """Record an action that already happened. Its answer stands whatever the audit write meets: a
    transfer decided `committed` must not be answered 503 "try again" because the audit row could not be
    written (the client could pay twice). A row that cannot be written goes to the error log instead."""
    try:
        await _record(request, action, status)
    except Exception as error:  # the action's own answer is the truth; the audit falls back to the log
        log.error(
            "audit_not_recorded",
            details={"action": action, "status": status, "path": request.path, "error": type(error).__name__},
        )


async def _record(request: web.Request, action: str, status: int) -> None:
    principal: Principal | None = request.get(PRINCIPAL_KEY)
    if principal is None or principal.role not in STAFF_ROLES:
        return  # only staff actions are audited; a refused token never got a principal
    row = {
        "actor": principal.subject,
        "role": principal.role,
        "action": action,
        "method": request.method,
        "path": request.path,
        "status": status,
        "address": request.remote or "unknown",
        "details": jsonio.dumps(await _details(request)),
    }
    async with request.app[ENGINE_KEY].begin() as connection:
        await connection.execute(_INSERT, row)
    log.info("staff_action_audited", details={key: row[key] for key in ("actor", "role", "action", "status")})


async def _details(request: web.Request) -> dict[str, Any]:
    """The path ids and the audited body fields, each cut to AUDITED_VALUE_MAX characters."""
    details: dict[str, Any] = {name: value[:AUDITED_VALUE_MAX] for name, value in request.match_info.items()}
    body = request.get(VALIDATED_BODY_KEY)
    if body is None and (request.can_read_body or request.body_exists):
        try:
            body = jsonio.loads(await request.read())  # aiohttp keeps the bytes the handler read
        except (jsonio.JsonInputError, web.HTTPException, ValueError):
            return details
    if isinstance(body, dict):
        details.update({name: str(body[name])[:AUDITED_VALUE_MAX] for name in AUDITED_FIELDS if name in body})
    return details


async def read_audit(request: web.Request) -> web.Response:
    """GET /audit (admin): the newest entries first, paged."""
    require_role(request, "admin")
    limit, offset = page_params(request)
    async with request.app[ENGINE_KEY].connect() as connection:
        rows = (await connection.execute(_SELECT, {"limit": limit, "offset": offset})).mappings().all()
    return ok([dict(row) for row in rows])


def add_audit_route(app: web.Application) -> None:
    """Every service serves its audit log (shared/service_app.py adds the route)."""
    app.router.add_get(AUDIT_PATH, read_audit)
