"""Login sessions: rotating refresh tokens (7 days, stored as SHA-256), logout, and the revocation feed.

A login starts a family (its id is the access tokens' `sid`). POST /auth/refresh spends a refresh token
and hands out the next one of the same family; presenting a spent one again means it was stolen, so the
whole family is revoked. Every revocation (logout, reuse, a deleted user) is also a row in
`revocations`, the feed each service polls (shared/revocation.py) to refuse access tokens within seconds.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.errors import UnauthorizedError

log = structlog.get_logger()

DEFAULT_REFRESH_TOKEN_TTL_S = 7 * 24 * 3600
REFRESH_TOKEN_BYTES = 32
MAX_REFRESH_TOKEN_LENGTH = 100  # token_urlsafe(32) is 43 characters
FEED_BATCH_MAX = 1000

_INSERT_TOKEN = text("""
    INSERT INTO refresh_tokens (token_id, family_id, username, token_hash, expires_at)
    VALUES (:token_id, :family_id, :username, :token_hash, :expires_at)""")
_SELECT_TOKEN = text("""
    SELECT token_id, family_id, username, expires_at, spent_at, revoked_at FROM refresh_tokens
    WHERE token_hash = :token_hash FOR UPDATE""")
_SPEND = text("UPDATE refresh_tokens SET spent_at = now() WHERE token_id = :token_id")
_REVOKE_FAMILY = text("""
    UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = :family_id AND revoked_at IS NULL""")
_REVOKE_USER = text("UPDATE refresh_tokens SET revoked_at = now() WHERE username = :username AND revoked_at IS NULL")
_FEED_SESSION = text("INSERT INTO revocations (session_id) VALUES (:session_id)")
_FEED_SUBJECT = text("INSERT INTO revocations (subject) VALUES (:subject)")
_READ_FEED = text("""
    SELECT revocation_id, session_id, subject, revoked_at FROM revocations
    WHERE revocation_id > :after ORDER BY revocation_id LIMIT :limit""")
_FAMILY_REVOKED = text(
    "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = :family_id AND revoked_at IS NOT NULL)"
)


def _digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


async def start(
    connection: AsyncConnection, username: str, ttl_s: int, family_id: UUID | None = None
) -> tuple[UUID, str, datetime]:
    """A new refresh token (of a new family unless given): (family_id, token, expires_at)."""
    family_id = family_id or uuid.uuid4()
    refresh_token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_s)
    await connection.execute(
        _INSERT_TOKEN,
        {
            "token_id": uuid.uuid4(),
            "family_id": family_id,
            "username": username,
            "token_hash": _digest(refresh_token),
            "expires_at": expires_at,
        },
    )
    return family_id, refresh_token, expires_at


async def rotate(engine: AsyncEngine, refresh_token: str, ttl_s: int) -> tuple[str, UUID, str, datetime]:
    """Spend a refresh token: (username, family_id, next token, its expiry); 401 for anything else.
    A spent token presented again revokes its family (whoever holds the newer one is refused too)."""
    async with engine.begin() as connection:
        row = (await connection.execute(_SELECT_TOKEN, {"token_hash": _digest(refresh_token)})).mappings().first()
        if row is None or row["revoked_at"] is not None or row["expires_at"] <= datetime.now(UTC):
            raise UnauthorizedError("invalid refresh token")
        if row["spent_at"] is not None or await _family_revoked(connection, row["family_id"]):
            await revoke_family(connection, row["family_id"])
            reused = True
        else:
            await connection.execute(_SPEND, {"token_id": row["token_id"]})
            family_id, next_token, expires_at = await start(connection, row["username"], ttl_s, row["family_id"])
            reused = False
    if reused:
        log.warning("refresh_token_reused", details={"family_id": str(row["family_id"])})
        raise UnauthorizedError("refresh token already used: this session is revoked")
    return row["username"], family_id, next_token, expires_at


async def _family_revoked(connection: AsyncConnection, family_id: UUID) -> bool:
    return bool((await connection.execute(_FAMILY_REVOKED, {"family_id": family_id})).scalar_one())


async def revoke_family(connection: AsyncConnection, family_id: UUID) -> None:
    await connection.execute(_REVOKE_FAMILY, {"family_id": family_id})
    await connection.execute(_FEED_SESSION, {"session_id": family_id})


async def logout(engine: AsyncEngine, session_id: str | None) -> None:
    """Revoke the session a token belongs to (a token without one, minted outside a login, has none)."""
    try:
        family_id = UUID(session_id) if session_id is not None else None
    except ValueError:
        family_id = None
    if family_id is None:
        return
    async with engine.begin() as connection:
        await revoke_family(connection, family_id)
    log.info("logged_out", details={"session_id": session_id})


async def revoke_user(connection: AsyncConnection, username: str) -> None:
    """Every session of a user, and every access token issued to them until now."""
    await connection.execute(_REVOKE_USER, {"username": username})
    await connection.execute(_FEED_SUBJECT, {"subject": username})


async def feed(engine: AsyncEngine, after: int, limit: int) -> list[dict[str, Any]]:
    assert 0 < limit <= FEED_BATCH_MAX, "the feed is read in bounded batches"
    async with engine.connect() as connection:
        rows = (await connection.execute(_READ_FEED, {"after": after, "limit": limit})).mappings().all()
    return [dict(row) for row in rows]
