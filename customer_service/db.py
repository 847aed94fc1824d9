"""Queries on the customers database: customers and their logins (users). Every function takes a connection."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from customer_service.domain import ContactInfo, CustomerChanges, Role
from shared import jsonio
from shared.database import row_dict

CUSTOMER_COLUMNS = "customer_id, name, address, contact_info, created_at, updated_at"
# The one query that reads password_hash; nothing else selects it, so no view can leak it.
LOGIN_COLUMNS = "user_id, username, password_hash, role, customer_id"

_INSERT_CUSTOMER = text(f"""
    INSERT INTO customers (customer_id, name, address, contact_info)
    VALUES (:customer_id, :name, :address, CAST(:contact_info AS JSONB))
    RETURNING {CUSTOMER_COLUMNS}""")
_SELECT_CUSTOMER = text(f"SELECT {CUSTOMER_COLUMNS} FROM customers WHERE customer_id = :customer_id")
# lower(...) on both sides so the lookup uses the unique index customers_email_unique.
_SELECT_CUSTOMER_BY_EMAIL = text(f"""
    SELECT {CUSTOMER_COLUMNS} FROM customers WHERE lower(contact_info ->> 'email') = lower(:email)""")
_SELECT_CUSTOMERS = text(f"""
    SELECT {CUSTOMER_COLUMNS} FROM customers ORDER BY created_at, customer_id LIMIT :limit OFFSET :offset""")
_UPDATE_CUSTOMER = text(f"""
    UPDATE customers SET name = COALESCE(CAST(:name AS TEXT), name),
                         address = COALESCE(CAST(:address AS TEXT), address),
                         contact_info = COALESCE(CAST(:contact_info AS JSONB), contact_info),
                         updated_at = now()
    WHERE customer_id = :customer_id
    RETURNING {CUSTOMER_COLUMNS}""")
_DELETE_CUSTOMER = text("DELETE FROM customers WHERE customer_id = :customer_id RETURNING customer_id")
_SELECT_CUSTOMER_USERNAMES = text("SELECT username FROM users WHERE customer_id = :customer_id")
_CUSTOMER_EXISTS = text("SELECT EXISTS (SELECT 1 FROM customers WHERE customer_id = :customer_id)")
_INSERT_USER = text("""
    INSERT INTO users (user_id, username, password_hash, role, customer_id)
    VALUES (:user_id, :username, :password_hash, :role, :customer_id)""")
_SELECT_LOGIN = text(f"SELECT {LOGIN_COLUMNS} FROM users WHERE lower(username) = lower(:username)")
_USERNAME_TAKEN = text("SELECT EXISTS (SELECT 1 FROM users WHERE lower(username) = lower(:username))")


def _contact_json(contact_info: ContactInfo | None) -> str | None:
    return jsonio.dumps(contact_info.to_json()) if contact_info is not None else None


async def insert_customer(
    connection: AsyncConnection, customer_id: UUID, name: str, address: str, contact_info: ContactInfo
) -> dict[str, Any]:
    result = await connection.execute(
        _INSERT_CUSTOMER,
        {"customer_id": customer_id, "name": name, "address": address, "contact_info": _contact_json(contact_info)},
    )
    return row_dict(result.one())


async def select_customer(connection: AsyncConnection, customer_id: UUID) -> dict[str, Any] | None:
    return row_dict((await connection.execute(_SELECT_CUSTOMER, {"customer_id": customer_id})).first())


async def select_customer_by_email(connection: AsyncConnection, email: str) -> dict[str, Any] | None:
    return row_dict((await connection.execute(_SELECT_CUSTOMER_BY_EMAIL, {"email": email})).first())


async def select_customers(connection: AsyncConnection, limit: int, offset: int) -> list[dict[str, Any]]:
    result = await connection.execute(_SELECT_CUSTOMERS, {"limit": limit, "offset": offset})
    return [dict(row._mapping) for row in result]


async def update_customer(
    connection: AsyncConnection, customer_id: UUID, changes: CustomerChanges
) -> dict[str, Any] | None:
    result = await connection.execute(
        _UPDATE_CUSTOMER,
        {
            "customer_id": customer_id,
            "name": changes.name,
            "address": changes.address,
            "contact_info": _contact_json(changes.contact_info),
        },
    )
    return row_dict(result.first())


async def delete_customer(connection: AsyncConnection, customer_id: UUID) -> bool:
    """Delete a customer (its logins go with it, ON DELETE CASCADE); whether it existed."""
    result = await connection.execute(_DELETE_CUSTOMER, {"customer_id": customer_id})
    return result.first() is not None


async def customer_exists(connection: AsyncConnection, customer_id: UUID) -> bool:
    return bool((await connection.execute(_CUSTOMER_EXISTS, {"customer_id": customer_id})).scalar_one())


async def insert_user(
    connection: AsyncConnection,
    *,
    user_id: UUID,
    username: str,
    password_hash: str,
    role: Role,
    customer_id: UUID | None,
) -> None:
    await connection.execute(
        _INSERT_USER,
        {
            "user_id": user_id,
            "username": username,
            "password_hash": password_hash,
            "role": role.value,
            "customer_id": customer_id,
        },
    )


async def select_login(connection: AsyncConnection, username: str) -> dict[str, Any] | None:
    """The login with this username (any case), including its password hash: for verifying a password only."""
    return row_dict((await connection.execute(_SELECT_LOGIN, {"username": username})).first())


async def username_taken(connection: AsyncConnection, username: str) -> bool:
    return bool((await connection.execute(_USERNAME_TAKEN, {"username": username})).scalar_one())


async def select_customer_usernames(connection: AsyncConnection, customer_id: UUID) -> list[str]:
    return [row.username for row in await connection.execute(_SELECT_CUSTOMER_USERNAMES, {"customer_id": customer_id})]
