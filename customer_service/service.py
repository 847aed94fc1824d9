"""Customer use cases: create, read, find, list, update, delete; logins and the login check that issues tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn
from uuid import UUID

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from customer_service import db, sessions
from customer_service.domain import Credentials, CustomerChanges, Login, NewCustomer, user_role
from customer_service.passwords import Passwords
from customer_service.throttle import LoginThrottle
from shared.auth import TokenKeys, issue_token
from shared.database import constraint_of
from shared.errors import ConflictError, NotFoundError, UnauthorizedError

log = structlog.get_logger()

# One message for unknown user and wrong password, so the answer does not reveal which usernames exist.
LOGIN_FAILED_MESSAGE = "invalid username or password"
# Unique constraints a caller can hit with ordinary input: constraint name -> (field, message).
UNIQUE_CONSTRAINTS = {
    "customers_pkey": ("customer_id", "a customer with this customer_id already exists"),
    "customers_email_unique": ("email", "a customer with this email already exists"),
    "users_username_unique": ("username", "this username is taken"),
    "customers_id_retired": ("customer_id", "this customer_id belonged to a deleted customer and is never reused"),
}


def customer_view(row: dict[str, Any]) -> dict[str, Any]:
    """The public JSON shape of a customer."""
    return {key: row[key] for key in ("customer_id", "name", "address", "contact_info", "created_at", "updated_at")}


async def create_customer(engine: AsyncEngine, passwords: Passwords, new_customer: NewCustomer) -> dict[str, Any]:
    """A customer and, when asked, its login, in one transaction: on a conflict neither is written."""
    login = new_customer.login
    # Hash before taking a connection: the pool should not wait on argon2.
    password_hash = await passwords.hash(login.password) if login is not None else None
    with _duplicates_as_conflicts():
        async with engine.begin() as connection:
            row = await db.insert_customer(
                connection, new_customer.customer_id, new_customer.name, new_customer.address, new_customer.contact_info
            )
            if login is not None:
                assert password_hash is not None, "hashed above for the login"
                await _insert_login(connection, uuid.uuid4(), login, password_hash)
    log.info("customer_created", details={"customer_id": str(row["customer_id"]), "with_login": login is not None})
    return row


async def create_login(engine: AsyncEngine, passwords: Passwords, login: Login) -> UUID:
    """A login for staff, or for an existing customer; its user_id."""
    user_id = uuid.uuid4()
    password_hash = await passwords.hash(login.password)
    with _duplicates_as_conflicts():
        async with engine.begin() as connection:
            await _insert_login(connection, user_id, login, password_hash)
    log.info("login_created", details={"user_id": str(user_id), "username": login.username, "role": login.role.value})
    return user_id


async def _insert_login(connection: AsyncConnection, user_id: UUID, login: Login, password_hash: str) -> None:
    await db.insert_user(
        connection,
        user_id=user_id,
        username=login.username,
        password_hash=password_hash,
        role=login.role,
        customer_id=login.customer_id,
    )


@contextmanager
def _duplicates_as_conflicts() -> Iterator[None]:
    """A duplicate id, email or username is the caller's conflict; any other violation is our bug and stays a 500."""
    try:
        yield
    except IntegrityError as error:
        assert error.orig is not None, "an IntegrityError wraps the driver's error"
        constraint = constraint_of(error)
        if constraint in UNIQUE_CONSTRAINTS:
            field, message = UNIQUE_CONSTRAINTS[constraint]
            raise ConflictError(message, details={"field": field}) from None
        raise


async def get_customer(engine: AsyncEngine, customer_id: UUID) -> dict[str, Any]:
    async with engine.connect() as connection:
        row = await db.select_customer(connection, customer_id)
    return _found(row, customer_id)


def _found(row: dict[str, Any] | None, customer_id: UUID) -> dict[str, Any]:
    if row is None:
        _not_found(customer_id)
    return row


def _not_found(customer_id: UUID) -> NoReturn:
    raise NotFoundError("customer not found", details={"customer_id": str(customer_id)})


async def find_customer_by_email(engine: AsyncEngine, email: str) -> dict[str, Any]:
    async with engine.connect() as connection:
        row = await db.select_customer_by_email(connection, email)
    if row is None:
        raise NotFoundError("no customer with this email")
    return row


async def list_customers(engine: AsyncEngine, limit: int, offset: int) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return await db.select_customers(connection, limit, offset)


async def customer_exists(engine: AsyncEngine, customer_id: UUID) -> bool:
    async with engine.connect() as connection:
        return await db.customer_exists(connection, customer_id)


async def update_customer(engine: AsyncEngine, customer_id: UUID, changes: CustomerChanges) -> dict[str, Any]:
    with _duplicates_as_conflicts():
        async with engine.begin() as connection:
            row = await db.update_customer(connection, customer_id, changes)
    row = _found(row, customer_id)
    changed = [name for name in ("name", "address", "contact_info") if getattr(changes, name) is not None]
    log.info("customer_updated", details={"customer_id": str(customer_id), "fields": changed})
    return row


async def delete_customer(engine: AsyncEngine, customer_id: UUID) -> None:
    """Delete a customer and its logins. Its accounts live in accounts_service and are not touched."""
    async with engine.begin() as connection:
        for username in await db.select_customer_usernames(connection, customer_id):
            await sessions.revoke_user(connection, username)  # their tokens are refused within seconds
        deleted = await db.delete_customer(connection, customer_id)
    if not deleted:
        _not_found(customer_id)
    log.info("customer_deleted", details={"customer_id": str(customer_id)})


async def login(
    engine: AsyncEngine,
    passwords: Passwords,
    credentials: Credentials,
    *,
    jwt_secret: str | TokenKeys,
    token_ttl_s: int,
    throttle: LoginThrottle | None = None,
    address: str = "unknown",
    refresh_ttl_s: int = sessions.DEFAULT_REFRESH_TOKEN_TTL_S,
) -> dict[str, Any]:
    """Check a username and password; a token for that login, or 401 with the same answer whatever failed.

    With a throttle: the attempt is counted first, and 429 once the username or the address is over its
    limit (known user or not), so parallel guesses cannot all reach the hasher."""
    attempt = await throttle.attempt(engine, credentials.username, address) if throttle is not None else None
    async with engine.connect() as connection:
        row = await db.select_login(connection, credentials.username)
    # Always verify, even with no such user (against a dummy hash), so timing does not reveal the usernames.
    matched = await passwords.verify(row["password_hash"] if row is not None else None, credentials.password)
    if not matched:
        log.info("login_failed", details={"username": credentials.username, "known_user": row is not None})
        raise UnauthorizedError(LOGIN_FAILED_MESSAGE)  # the counted attempt stays counted
    assert row is not None, "no password matches the dummy hash"
    if throttle is not None and attempt is not None:
        await throttle.succeeded(engine, attempt)
    async with engine.begin() as connection:
        family_id, refresh_token, refresh_expires_at = await sessions.start(connection, row["username"], refresh_ttl_s)
    log.info("login_succeeded", details={"user_id": str(row["user_id"]), "role": row["role"]})
    return _session_answer(row, jwt_secret, token_ttl_s, family_id, refresh_token, refresh_expires_at)


async def refresh(
    engine: AsyncEngine, refresh_token: str, *, jwt_secret: str | TokenKeys, token_ttl_s: int, refresh_ttl_s: int
) -> dict[str, Any]:
    """A new access token and the next refresh token for a refresh token, spending it (sessions.rotate)."""
    username, family_id, next_token, expires_at = await sessions.rotate(engine, refresh_token, refresh_ttl_s)
    async with engine.connect() as connection:
        row = await db.select_login(connection, username)
    if row is None:  # the login was deleted since
        raise UnauthorizedError("invalid refresh token")
    return _session_answer(row, jwt_secret, token_ttl_s, family_id, next_token, expires_at)


def _session_answer(
    row: dict[str, Any],
    jwt_secret: str | TokenKeys,
    token_ttl_s: int,
    family_id: UUID,
    refresh_token: str,
    refresh_expires_at: datetime,
) -> dict[str, Any]:
    role = user_role(row["role"], row["customer_id"])
    token, expires_at = issue_token(
        jwt_secret,
        role=role.value,
        customer_id=row["customer_id"],
        subject=row["username"],
        ttl_s=token_ttl_s,
        session_id=str(family_id),
    )
    return {
        "token": token,
        "customer_id": row["customer_id"],
        "role": role.value,
        "expires_at": expires_at,
        "refresh_token": refresh_token,
        "refresh_expires_at": refresh_expires_at,
    }
