"""The customer service's OpenAPI 3.1 document: served at /openapi.json and used to validate request bodies."""

from __future__ import annotations

from typing import Any

from customer_service import domain
from shared.auth import ROLES
from shared.openapi import CHANGE_ERRORS, PAGE_PARAMETERS, document, operation, path_uuid_parameter, query_int_parameter
from shared.schemas import TIMESTAMP, UUID_SCHEMA, array_of, nullable, obj

TAGS = ("customers",)
AUTH = ("auth",)
# Linear on any input: the stripped phone ends in a non-space, so the inner run and the trailing \s* never
# compete for the same spaces (the old `[0-9 ().-]*\s*$` backtracked quadratically on a run of spaces).
PHONE_PATTERN = r"^\s*\+?[0-9(]([0-9 ().-]*[0-9().-])?\s*$"


def _text(max_length: int, *, nullable: bool = False) -> dict[str, Any]:
    return {"type": ["string", "null"] if nullable else "string", "minLength": 1, "maxLength": max_length}


def _contact_info(*, nullable: bool = False) -> dict[str, Any]:
    email = {
        "type": "string",
        "minLength": 3,
        "maxLength": domain.MAX_EMAIL_LENGTH,
        "pattern": r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$",
    }
    phone = {
        "type": ["string", "null"],
        "minLength": domain.MIN_PHONE_DIGITS,
        "maxLength": domain.MAX_PHONE_LENGTH,
        "pattern": PHONE_PATTERN,
    }
    schema = obj({"email": email, "phone": phone}, required=("email",), closed=True)
    if nullable:
        schema["type"] = ["object", "null"]
    return schema


CONTACT_VIEW = obj({"email": {"type": "string"}, "phone": {"type": "string"}}, required=("email",))
CUSTOMER = obj(
    {
        "customer_id": UUID_SCHEMA,
        "name": {"type": "string"},
        "address": {"type": "string"},
        "contact_info": CONTACT_VIEW,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
)
CUSTOMER_PAGE = obj(
    {
        "customers": array_of(CUSTOMER),
        "pagination": obj({"limit": {"type": "integer"}, "offset": {"type": "integer"}, "count": {"type": "integer"}}),
    }
)

CREDENTIALS = obj(
    {"username": _text(domain.MAX_USERNAME_LENGTH), "password": _text(domain.MAX_PASSWORD_LENGTH)}, closed=True
)
LOGIN_ANSWER = obj(
    {
        "token": {"type": "string"},
        "customer_id": nullable(UUID_SCHEMA),
        "role": {"enum": sorted(ROLES - {"service"})},
        "expires_at": TIMESTAMP,
        "refresh_token": {"type": "string"},
        "refresh_expires_at": TIMESTAMP,
    }
)
REFRESH = obj({"refresh_token": _text(domain.MAX_REFRESH_TOKEN_LENGTH)}, closed=True)
LOGOUT_ANSWER = obj({"session_id": {"type": ["string", "null"]}})
REVOCATION = obj(
    {
        "revocation_id": {"type": "integer"},
        "session_id": nullable(UUID_SCHEMA),
        "subject": {"type": ["string", "null"]},
        "revoked_at": TIMESTAMP,
    }
)
FEED_PARAMETERS = [
    query_int_parameter("after", minimum=0, maximum=2**62, default=0),
    query_int_parameter("limit", minimum=1, maximum=1000, default=1000),
]
NEW_CUSTOMER = obj(
    {
        "customer_id": nullable(UUID_SCHEMA),
        "name": _text(domain.MAX_NAME_LENGTH),
        "address": _text(domain.MAX_ADDRESS_LENGTH),
        "contact_info": _contact_info(),
        "username": {
            "type": ["string", "null"],
            "minLength": domain.MIN_USERNAME_LENGTH,
            "maxLength": domain.MAX_USERNAME_LENGTH,
            "pattern": r"^\s*[A-Za-z0-9._@-]+\s*$",
        },
        "password": {
            "type": ["string", "null"],
            "minLength": domain.MIN_PASSWORD_LENGTH,
            "maxLength": domain.MAX_PASSWORD_LENGTH,
        },
    },
    required=("name", "address", "contact_info"),
    closed=True,
)
CUSTOMER_CHANGES = obj(
    {
        "name": _text(domain.MAX_NAME_LENGTH, nullable=True),
        "address": _text(domain.MAX_ADDRESS_LENGTH, nullable=True),
        "contact_info": _contact_info(nullable=True),
    },
    required=(),
    closed=True,
)
CUSTOMER_ID = [path_uuid_parameter("customer_id")]
EMAIL_QUERY = [
    {
        "name": "email",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "minLength": 3, "maxLength": domain.MAX_EMAIL_LENGTH},
    }
]


def openapi_document() -> dict[str, Any]:
    return document(
        "customer-service",
        "Customers, logins and tokens.",
        {
            "/auth/login": {
                "post": operation(
                    "log in: a bearer token",
                    LOGIN_ANSWER,
                    body=CREDENTIALS,
                    public=True,
                    errors=(400, 401, 429),
                    tags=AUTH,
                )
            },
            "/auth/refresh": {
                "post": operation(
                    "the next access and refresh tokens for a refresh token (which is spent; reusing a spent one "
                    "revokes its session)",
                    LOGIN_ANSWER,
                    body=REFRESH,
                    public=True,
                    errors=(400, 401),
                    tags=AUTH,
                )
            },
            "/auth/logout": {
                "post": operation(
                    "revoke this token's session everywhere (any user)",
                    LOGOUT_ANSWER,
                    errors=(401, 403),
                    tags=AUTH,
                )
            },
            "/auth/revocations": {
                "get": operation(
                    "revoked sessions and users after an id, oldest first (service): every service polls it",
                    array_of(REVOCATION),
                    parameters=FEED_PARAMETERS,
                    tags=AUTH,
                )
            },
            "/customers": {
                "get": operation(
                    "list customers, oldest first (teller, admin)", CUSTOMER_PAGE, parameters=PAGE_PARAMETERS, tags=TAGS
                ),
                "post": operation(
                    "create a customer, optionally with its login (teller, admin)",
                    CUSTOMER,
                    status=201,
                    body=NEW_CUSTOMER,
                    errors=(400, 401, 403, 409),
                    tags=TAGS,
                ),
            },
            "/customers/search/email": {
                "get": operation(
                    "find a customer by email (teller, admin)", CUSTOMER, parameters=EMAIL_QUERY, tags=TAGS
                )
            },
            "/customers/{customer_id}": {
                "get": operation(
                    "a customer (owner, teller, admin, service)", CUSTOMER, parameters=CUSTOMER_ID, tags=TAGS
                ),
                "patch": operation(
                    "change name, address or contact_info (owner, teller, admin)",
                    CUSTOMER,
                    body=CUSTOMER_CHANGES,
                    parameters=CUSTOMER_ID,
                    errors=CHANGE_ERRORS,
                    tags=TAGS,
                ),
                "delete": operation(
                    "delete a customer (admin)",
                    obj({"customer_id": UUID_SCHEMA}),
                    parameters=CUSTOMER_ID,
                    errors=CHANGE_ERRORS,
                    tags=TAGS,
                ),
            },
            "/customers/{customer_id}/exists": {
                "get": operation(
                    "whether a customer exists (any token)",
                    obj({"customer_id": UUID_SCHEMA, "exists": {"type": "boolean"}}),
                    parameters=CUSTOMER_ID,
                    tags=TAGS,
                )
            },
        },
    )
