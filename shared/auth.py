"""Bearer JWTs: HS256 with JWT_SECRET, payload {customer_id, role, iat, exp}; algorithm pinned, exp required."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt
from aiohttp import web

from shared.errors import ForbiddenError, UnauthorizedError

ALGORITHM = "HS256"
ROLES = frozenset({"customer", "teller", "admin", "service"})
STAFF_ROLES = ("teller", "admin")
DEFAULT_USER_TOKEN_TTL_S = 8 * 3600
DEFAULT_SERVICE_TOKEN_TTL_S = 300
VERIFIED_CACHE_MAX = 10_000
JWT_SECRET_KEY = web.AppKey("jwt_secret", str)
PRINCIPAL_KEY = web.RequestKey("principal", object)


@dataclass(frozen=True, slots=True)
class Principal:
    role: str
    customer_id: UUID | None
    subject: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


_verified: dict[tuple[str, str], tuple[Principal, float]] = {}


def issue_token(secret: str, *, role: str, customer_id: UUID | None = None, subject: str | None = None,
                ttl_s: int = DEFAULT_USER_TOKEN_TTL_S, now: datetime | None = None) -> tuple[str, datetime]:
    assert role in ROLES, f"unknown role {role}"
    issued_at = now or datetime.now(UTC)
    expires_at = issued_at + timedelta(seconds=ttl_s)
    payload = {
        "customer_id": str(customer_id) if customer_id else None,
        "role": role,
        "sub": subject or (str(customer_id) if customer_id else role),
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), expires_at


def verify_token(secret: str, token: str) -> Principal:
    """The token's principal; a token verified before is answered from a small cache until it expires."""
    cached = _verified.get((secret, token))
    if cached is not None and cached[1] > time.time():
        return cached[0]
    principal, expires_at = _verify(secret, token)
    if len(_verified) >= VERIFIED_CACHE_MAX:
        _verified.clear()  # bounded: a flood of distinct tokens costs verification, never memory
    _verified[(secret, token)] = (principal, expires_at)
    return principal


def _verify(secret: str, token: str) -> tuple[Principal, float]:
    try:
        payload = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "role"]})
    except jwt.ExpiredSignatureError:
        raise UnauthorizedError("token expired") from None
    except jwt.PyJWTError:
        raise UnauthorizedError("invalid token") from None
    role = payload.get("role")
    if role not in ROLES:
        raise UnauthorizedError("invalid token role")
    principal = Principal(role=role, customer_id=_customer_id(payload), subject=str(payload.get("sub", "")))
    return principal, float(payload["exp"])


def _customer_id(payload: dict) -> UUID | None:
    raw = payload.get("customer_id")
    if raw is None:
        return None
    try:
        return UUID(str(raw))
    except ValueError:
        raise UnauthorizedError("invalid token subject") from None


def principal_of(request: web.Request) -> Principal:
    """The verified caller, or 401. Cached on the request."""
    if PRINCIPAL_KEY in request:
        return request[PRINCIPAL_KEY]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("missing bearer token")
    principal = verify_token(request.app[JWT_SECRET_KEY], token.strip())
    request[PRINCIPAL_KEY] = principal
    return principal


def require_role(request: web.Request, *roles: str) -> Principal:
    principal = principal_of(request)
    if principal.role not in roles:
        raise ForbiddenError(f"role {principal.role} may not do this")
    return principal


def require_owner_or_staff(request: web.Request, customer_id: UUID) -> Principal:
    principal = require_role(request, "customer", *STAFF_ROLES)
    if principal.role == "customer" and principal.customer_id != customer_id:
        raise ForbiddenError("not your resource")
    return principal

