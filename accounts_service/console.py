"""Routes the web console needs beside the API: the locks held right now (staff, service), and in demo
mode a participant failpoint armed at runtime for the next transfer that reaches it (admin)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from accounts_service.keys import ENGINE_KEY
from shared import failpoints
from shared.auth import STAFF_ROLES
from shared.body_validation import validated_body
from shared.callers import require_role
from shared.errors import ValidationError
from shared.params import query_int, require_field
from shared.web import ok

MAX_LOCKS_LISTED = 200
# Only the participant's own failpoints: this process can break only itself.
PARTICIPANT_FAILPOINTS = ("after_prepare_before_answer", "after_local_commit_before_answer")
_SELECT_LOCKS = text("""
    SELECT account_id, transaction_lock, pending_change, locked_at FROM accounts
    WHERE transaction_lock IS NOT NULL ORDER BY locked_at, account_id LIMIT :limit""")


def add_routes(app: web.Application, *, demo_endpoints: bool) -> None:
    app.router.add_get("/2pc/locks", locks)
    if demo_endpoints:
        app.router.add_post("/demo/failpoints", arm_failpoint)


async def locks(request: web.Request) -> web.Response:
    require_role(request, "service", *STAFF_ROLES)
    limit = query_int(request, "limit", default=MAX_LOCKS_LISTED, minimum=1, maximum=MAX_LOCKS_LISTED)
    async with request.app[ENGINE_KEY].connect() as connection:
        rows = [dict(row._mapping) for row in await connection.execute(_SELECT_LOCKS, {"limit": limit})]
    return ok(rows)


async def arm_failpoint(request: web.Request) -> web.Response:
    require_role(request, "admin")
    body = await validated_body(request)
    name, action = require_field(body, "failpoint"), require_field(body, "action")
    seconds = body.get("seconds", 0)
    if name not in PARTICIPANT_FAILPOINTS or action not in failpoints.ACTIONS:
        raise ValidationError(f"failpoint must be one of {PARTICIPANT_FAILPOINTS}, action one of {failpoints.ACTIONS}")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= failpoints.MAX_STALL_S:
        raise ValidationError(f"seconds must be a number from 0 to {failpoints.MAX_STALL_S:g}")
    failpoints.arm_once(name, action, float(seconds))
    return ok(
        {"failpoint": name, "action": action, "seconds": seconds},
        message=f"DEMO: {action} at {name} for the next transfer that reaches it",
    )
