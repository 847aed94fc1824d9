"""Who is calling: the request's verified principal (checked once, kept on the request) and the role checks
handlers make. The token rules themselves are in shared/auth.py, which needs no aiohttp."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from shared.auth import STAFF_ROLES, TRANSACTIONS_SERVICE_NAME, Principal, RevocationCheck, TokenKeys, verify_token
from shared.errors import ForbiddenError, UnauthorizedError

PRINCIPAL_KEY = web.RequestKey("principal", Principal)
TOKEN_KEYS_KEY = web.AppKey("token_keys", TokenKeys)
AUDIENCE_KEY = web.AppKey("token_audience", str)
REVOCATION_KEY = web.AppKey("token_revocations", RevocationCheck)


def principal_of(request: web.Request) -> Principal:
    """The verified caller, or 401. Cached on the request."""
    if PRINCIPAL_KEY in request:
        return request[PRINCIPAL_KEY]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("missing bearer token")
    app = request.app
    principal = verify_token(app[TOKEN_KEYS_KEY], token.strip(), audience=app[AUDIENCE_KEY])
    if REVOCATION_KEY in app and app[REVOCATION_KEY].is_revoked(principal):
        raise UnauthorizedError("token revoked")
    request[PRINCIPAL_KEY] = principal
    return principal


def require_role(request: web.Request, *roles: str) -> Principal:
    principal = principal_of(request)
    if principal.role not in roles:
        raise ForbiddenError(f"role {principal.role} may not do this")
    return principal


def require_coordinator(request: web.Request) -> Principal:
    """The transfer coordinator (transactions_service), by a token only it can sign; anyone else is 403."""
    principal = principal_of(request)
    if principal.role != "service" or not principal.coordinator or principal.subject != TRANSACTIONS_SERVICE_NAME:
        raise ForbiddenError("only the transfer coordinator may do this")
    return principal


def require_owner_or_staff(request: web.Request, customer_id: UUID) -> Principal:
    principal = require_role(request, "customer", *STAFF_ROLES)
    if principal.role == "customer" and principal.customer_id != customer_id:
        raise ForbiddenError("not your resource")
    return principal
