"""The transactions service's OpenAPI 3.1 document: served at /openapi.json and used to validate request bodies."""

from __future__ import annotations

from typing import Any

from shared.openapi import JSON, PAGE_PARAMETERS, document, operation, path_uuid_parameter, query_int_parameter
from shared.schemas import ERROR_ENVELOPE, MONEY, TIMESTAMP, UUID_SCHEMA, array_of, money_input, nullable, obj
from transactions_service.domain import MAX_IDEMPOTENCY_KEY_LENGTH, WIRE_STATUSES
from transactions_service.handlers import MAX_PENDING_AGE_MINUTES
from transactions_service.protocol import AbortReason, EventType, TransferStatus

TAGS = ("transfers",)
MONITORING = ("monitoring",)
# On the wire an undecided transfer is `pending` (the original's name); `preparing` is accepted in paths.
STATUSES = list(WIRE_STATUSES)

TRANSFER = obj(
    {
        "transaction_id": UUID_SCHEMA,
        "status": {"enum": STATUSES},
        "reason": {"enum": [None, *(reason.value for reason in AbortReason)]},
        "source_account_id": UUID_SCHEMA,
        "destination_account_id": UUID_SCHEMA,
        "amount": MONEY,
        "completed": {"type": "boolean"},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "decided_at": nullable(TIMESTAMP),
        "completed_at": nullable(TIMESTAMP),
    }
)
EVENT = obj(
    {
        "event_id": {"type": "integer"},
        "event_type": {"enum": [event.value for event in EventType]},
        "participant": {"type": ["string", "null"]},
        "details": {"type": "object"},
        "occurred_at": TIMESTAMP,
        "recorded_at": TIMESTAMP,
    },
    required=("event_type", "details", "occurred_at"),
)
TRANSFER_WITH_EVENTS = {
    **TRANSFER,
    "properties": {**TRANSFER["properties"], "events": array_of(EVENT)},
    "required": [*TRANSFER["required"], "events"],
}
ATTEMPT = {"type": "integer", "minimum": 1}
TRANSFER_ANSWER = {
    **TRANSFER,
    "properties": {**TRANSFER["properties"], "retry_attempt": ATTEMPT, "total_attempts": ATTEMPT},
    "required": [*TRANSFER["required"], "retry_attempt", "total_attempts"],
}
# The 409 of an aborted transfer: our error envelope, plus the original's `data`, `message` and `details`.
ABORTED_ANSWER = {
    **ERROR_ENVELOPE,
    "properties": {
        **ERROR_ENVELOPE["properties"],
        "data": TRANSFER_ANSWER,
        "message": {"type": "string"},
        "details": obj({"reason": {"enum": [reason.value for reason in AbortReason]}}),
    },
    "required": [*ERROR_ENVELOPE["required"], "data", "message", "details"],
}
OUTCOME = obj({"transaction_id": UUID_SCHEMA, "status": {"enum": STATUSES}, "completed": {"type": "boolean"}})
STATUS_COUNTS = obj({"transfers": {"type": "integer"}, "unfinished": {"type": "integer"}, "amount": MONEY})
STATS = obj(
    {
        "total": {"type": "integer"},
        "by_status": obj({status: {"type": "integer"} for status in STATUSES}),
        "success_rate": {"type": "string", "maxLength": 8, "pattern": r"^(0|[0-9]{1,3}\.[0-9]{2})%$"},
        "unfinished": {"type": "integer"},
        "by_status_detail": obj({status: STATUS_COUNTS for status in STATUSES}),
    }
)
PAGINATION = obj({"limit": {"type": "integer"}, "offset": {"type": "integer"}, "count": {"type": "integer"}})
TRANSFER_PAGE = {"transactions": array_of(TRANSFER), "count": {"type": "integer"}, "pagination": PAGINATION}
ACCOUNT_HISTORY = obj({"account_id": UUID_SCHEMA, **TRANSFER_PAGE})
BY_STATUS = obj({"status": {"enum": STATUSES}, **TRANSFER_PAGE})
PENDING = obj(
    {
        "pending_transactions": array_of(TRANSFER),
        "count": {"type": "integer"},
        "older_than_minutes": {"type": "integer"},
        "warning": {"type": "string"},
    },
    required=("pending_transactions", "count", "older_than_minutes"),
)

NEW_TRANSFER = obj(
    {
        "source_account_id": UUID_SCHEMA,
        "destination_account_id": UUID_SCHEMA,
        "amount": money_input(),
        "transaction_id": {
            **nullable(UUID_SCHEMA),
            "description": "the client's name for this transfer: a "
            "repeat answers the same transfer, another body under it is a 422",
        },
    },
    required=("source_account_id", "destination_account_id", "amount"),
)
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "makes a retry safe: the same key answers the same transfer",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
        "pattern": r"^ *[\x21-\x7e][\x20-\x7e]*$",
    },
}  # linear: leading spaces, then one non-space
TRANSACTION_ID = [path_uuid_parameter("transaction_id")]
HISTORY = operation(
    "transfers touching an account, newest first (owner, staff, service)",
    ACCOUNT_HISTORY,
    parameters=[path_uuid_parameter("account_id"), *PAGE_PARAMETERS],
    tags=TAGS,
)


def _transfer_operation() -> dict[str, Any]:
    post = operation(
        "move money between two accounts (owner of the source, teller, admin); 409 when aborted, with the "
        "reason as the error code and the transfer in details and data",
        TRANSFER_ANSWER,
        body=NEW_TRANSFER,
        parameters=[IDEMPOTENCY_KEY],
        errors=(400, 401, 403, 404, 409, 422, 504),
        tags=TAGS,
    )
    post["responses"]["409"]["content"][JSON] = {"schema": {"anyOf": [ABORTED_ANSWER, ERROR_ENVELOPE]}}
    return post


def openapi_document() -> dict[str, Any]:
    return document(
        "transactions-service",
        "Transfers: the two-phase-commit coordinator and its log.",
        {
            "/transfers": {"post": _transfer_operation()},
            "/transfers/status/{transaction_id}": {
                "get": operation(
                    "a transfer (requester, account owners, staff, service)",
                    TRANSFER,
                    parameters=TRANSACTION_ID,
                    tags=TAGS,
                )
            },
            "/transfers/history/{account_id}": {"get": HISTORY},
            "/transactions/account/{account_id}": {"get": HISTORY},
            "/transactions/status/{status}": {
                "get": operation(
                    "transfers in one state (teller, admin); preparing is an alias of pending",
                    BY_STATUS,
                    parameters=[
                        {
                            "name": "status",
                            "in": "path",
                            "required": True,
                            "schema": {"enum": [*STATUSES, TransferStatus.PREPARING.value]},
                        },
                        *PAGE_PARAMETERS,
                    ],
                    tags=MONITORING,
                )
            },
            "/transactions/monitoring/pending": {
                "get": operation(
                    "unfinished transfers older than some minutes, oldest first (admin)",
                    PENDING,
                    parameters=[
                        query_int_parameter("olderThanMinutes", minimum=0, maximum=MAX_PENDING_AGE_MINUTES, default=5)
                    ],
                    tags=MONITORING,
                )
            },
            "/transactions/monitoring/stats": {
                "get": operation("counts and sums per state (admin)", STATS, tags=MONITORING)
            },
            "/transactions/{transaction_id}": {
                "get": operation(
                    "a transfer with its protocol events (requester, account owners, staff, service)",
                    TRANSFER_WITH_EVENTS,
                    parameters=TRANSACTION_ID,
                    tags=TAGS,
                )
            },
            "/transactions/{transaction_id}/outcome": {
                "get": operation(
                    "the stored decision, for a participant in doubt (service, staff); only a 404 TRANSFER_NOT_FOUND "
                    "naming this transaction_id means presume abort",
                    OUTCOME,
                    parameters=TRANSACTION_ID,
                    tags=("two-phase commit",),
                )
            },
            "/ws": {"get": push_operation()},
        },
    )


def push_operation() -> dict[str, Any]:
    """The push channel: a WebSocket upgrade (101); a plain GET is a 400. Access is checked in-band."""
    result = operation(
        "the push channel (WebSocket): customers hear their transfers decided and their protocol events, staff "
        "every protocol event; authenticate with the access token as the Authorization header, a "
        "Sec-WebSocket-Protocol entry bearer.<token> beside banking.v1, or a first message "
        '{"type": "auth", "token": ...}; never in the URL',
        {},
        errors=(400,),
        public=True,
        tags=("push",),
    )
    result["responses"] = {
        "101": {"description": "switching protocols: the socket is open"},
        "400": result["responses"]["400"],
        "503": result["responses"]["503"],
    }
    return result
