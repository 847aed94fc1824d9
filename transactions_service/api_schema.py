"""The transactions service's OpenAPI 3.1 document: served at /openapi.json and used to validate request bodies."""
from __future__ import annotations

from typing import Any

from shared.openapi import (MONEY, NULLABLE_TIMESTAMP, PAGE_PARAMETERS, TIMESTAMP, UUID_SCHEMA, array_of, document,
                            money_input, obj, operation, path_uuid_parameter, query_int_parameter)
from transactions_service.domain import MAX_IDEMPOTENCY_KEY_LENGTH
from transactions_service.handlers import MAX_PENDING_AGE_MINUTES
from transactions_service.protocol import AbortReason, EventType, TransferStatus

TAGS = ("transfers",)
MONITORING = ("monitoring",)
STATUSES = [status.value for status in TransferStatus]

TRANSFER = obj({"transaction_id": UUID_SCHEMA, "status": {"enum": STATUSES},
                "reason": {"enum": [None, *(reason.value for reason in AbortReason)]},
                "source_account_id": UUID_SCHEMA, "destination_account_id": UUID_SCHEMA, "amount": MONEY,
                "completed": {"type": "boolean"}, "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
                "decided_at": NULLABLE_TIMESTAMP, "completed_at": NULLABLE_TIMESTAMP})
EVENT = obj({"event_id": {"type": "integer"}, "event_type": {"enum": [event.value for event in EventType]},
             "participant": {"type": ["string", "null"]}, "details": {"type": "object"},
             "occurred_at": TIMESTAMP, "recorded_at": TIMESTAMP}, required=("event_type", "details", "occurred_at"))
TRANSFER_WITH_EVENTS = {**TRANSFER, "properties": {**TRANSFER["properties"], "events": array_of(EVENT)},
                        "required": [*TRANSFER["required"], "events"]}
OUTCOME = obj({"transaction_id": UUID_SCHEMA, "status": {"enum": STATUSES}, "completed": {"type": "boolean"}})
STATUS_COUNTS = obj({"transfers": {"type": "integer"}, "unfinished": {"type": "integer"}, "amount": MONEY})
STATS = obj({"by_status": obj({status: STATUS_COUNTS for status in STATUSES}), "total": {"type": "integer"},
             "unfinished": {"type": "integer"}})

NEW_TRANSFER = obj({"source_account_id": UUID_SCHEMA, "destination_account_id": UUID_SCHEMA,
                    "amount": money_input()})
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "description": "makes a retry safe: the same key answers the same transfer",
                   "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
                              "pattern": r"^ *[\x21-\x7e][\x20-\x7e]*$"}}  # linear: leading spaces, then one non-space
TRANSACTION_ID = [path_uuid_parameter("transaction_id")]
HISTORY = operation("transfers touching an account, newest first (owner, staff, service)", array_of(TRANSFER),
                    parameters=[path_uuid_parameter("account_id"), *PAGE_PARAMETERS], tags=TAGS)


def openapi_document() -> dict[str, Any]:
    return document("transactions-service", "Transfers: the two-phase-commit coordinator and its log.", {
        "/transfers": {"post": operation(
            "move money between two accounts (owner of the source, teller, admin); 409 when aborted, with the "
            "reason as the error code and the transfer in details", TRANSFER, body=NEW_TRANSFER,
            parameters=[IDEMPOTENCY_KEY], errors=(400, 401, 403, 404, 409, 422), tags=TAGS)},
        "/transfers/status/{transaction_id}": {"get": operation(
            "a transfer (requester, account owners, staff, service)", TRANSFER, parameters=TRANSACTION_ID, tags=TAGS)},
        "/transfers/history/{account_id}": {"get": HISTORY},
        "/transactions/account/{account_id}": {"get": HISTORY},
        "/transactions/status/{status}": {"get": operation(
            "transfers in one state (teller, admin)", array_of(TRANSFER),
            parameters=[{"name": "status", "in": "path", "required": True, "schema": {"enum": STATUSES}},
                        *PAGE_PARAMETERS], tags=MONITORING)},
        "/transactions/monitoring/pending": {"get": operation(
            "unfinished transfers older than some minutes (admin)", array_of(TRANSFER),
            parameters=[query_int_parameter("olderThanMinutes", minimum=0, maximum=MAX_PENDING_AGE_MINUTES,
                                            default=5)], tags=MONITORING)},
        "/transactions/monitoring/stats": {"get": operation("counts and sums per state (admin)", STATS,
                                                            tags=MONITORING)},
        "/transactions/{transaction_id}": {"get": operation(
            "a transfer with its protocol events (requester, account owners, staff, service)", TRANSFER_WITH_EVENTS,
            parameters=TRANSACTION_ID, tags=TAGS)},
        "/transactions/{transaction_id}/outcome": {"get": operation(
            "the stored decision, for a participant in doubt (service, staff); 404 means presume abort", OUTCOME,
            parameters=TRANSACTION_ID, tags=("two-phase commit",))},
    })
