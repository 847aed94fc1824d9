"""The accounts service's OpenAPI 3.1 document: served at /openapi.json and used to validate request bodies."""

from __future__ import annotations

from typing import Any

from accounts_service.console import MAX_LOCKS_LISTED, PARTICIPANT_FAILPOINTS
from accounts_service.domain import VoteReason
from accounts_service.handlers import MAX_CHANGES_PER_PREPARE
from accounts_service.participant_batch import PARTICIPANT_BATCH_MAX
from accounts_service.service import OWNER_LOOKUP_MAX
from shared.openapi import (
    CHANGE_ERRORS,
    JSON,
    PAGE_PARAMETERS,
    document,
    operation,
    path_uuid_parameter,
    query_int_parameter,
)
from shared.schemas import MONEY, TIMESTAMP, UUID_SCHEMA, array_of, money_input, nullable, obj

ACCOUNTS = ("accounts",)
PROTOCOL = ("two-phase commit (service tokens)",)

ACCOUNT = obj(
    {
        "account_id": UUID_SCHEMA,
        "customer_id": UUID_SCHEMA,
        "balance": MONEY,
        "transaction_lock": nullable(UUID_SCHEMA),
        "pending_change": nullable(MONEY),
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
)
EFFECTIVE_BALANCE = obj(
    {
        "account_id": UUID_SCHEMA,
        "balance": MONEY,
        "pending_change": nullable(MONEY),
        "effective_balance": MONEY,
        "transaction_lock": nullable(UUID_SCHEMA),
        "current_balance": MONEY,
        "is_locked": {"type": "boolean"},
        "transaction_id": UUID_SCHEMA,
    },
    required=(
        "account_id",
        "balance",
        "pending_change",
        "effective_balance",
        "transaction_lock",
        "current_balance",
        "is_locked",
    ),
)
LEDGER_ENTRY = obj(
    {
        "transaction_id": UUID_SCHEMA,
        "account_id": UUID_SCHEMA,
        "change": MONEY,
        "kind": {"type": "string"},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
)
LEG = obj(
    {"transaction_id": UUID_SCHEMA, "account_id": UUID_SCHEMA, "state": {"type": "string"}}, required=("account_id",)
)
LOCK_STATUS = obj(
    {
        "account_id": UUID_SCHEMA,
        "transaction_lock": nullable(UUID_SCHEMA),
        "pending_change": nullable(MONEY),
        "locked_at": nullable(TIMESTAMP),
    }
)
VOTE = obj(
    {
        "transaction_id": UUID_SCHEMA,
        "vote": {"enum": ["yes", "no"]},
        "reason": {"enum": [None, *(reason.value for reason in VoteReason)]},
    }
)
DECISION = obj({"transaction_id": UUID_SCHEMA, "state": {"enum": ["committed", "aborted"]}, "legs": array_of(LEG)})

OPEN_ACCOUNT = obj(
    {"customer_id": UUID_SCHEMA, "initial_balance": money_input(allow_zero=True)}, required=("customer_id",)
)
OWNER_LOOKUP = obj(
    {"account_ids": {"type": "array", "minItems": 1, "maxItems": OWNER_LOOKUP_MAX, "items": UUID_SCHEMA}}
)
OWNERS = obj({"owners": array_of(obj({"account_id": UUID_SCHEMA, "customer_id": UUID_SCHEMA}))})
SET_BALANCE = obj({"balance": money_input(allow_zero=True)})
WITHDRAW = obj({"amount": money_input()})
ARM_FAILPOINT = obj(
    {
        "failpoint": {"enum": list(PARTICIPANT_FAILPOINTS)},
        "action": {"enum": ["crash", "stall"]},
        "seconds": {"type": "number", "minimum": 0, "maximum": 120},
    },
    required=("failpoint", "action"),
)
ARMED = obj({"failpoint": {"type": "string"}, "action": {"type": "string"}, "seconds": {"type": "number"}})
CHANGE = obj({"account_id": UUID_SCHEMA, "change": money_input(signed=True)})
# A protocol message names its legs as `changes: [{account_id, change}]` or, for one leg, `account_id, amount`;
# commit and abort may name none (then every leg of the transfer).
PROTOCOL_MESSAGE = {
    **obj(
        {
            "transaction_id": UUID_SCHEMA,
            "changes": {"type": "array", "minItems": 1, "maxItems": MAX_CHANGES_PER_PREPARE, "items": CHANGE},
            "account_id": UUID_SCHEMA,
            "amount": money_input(signed=True),
        },
        required=("transaction_id",),
    ),
    "dependentRequired": {"account_id": ["amount"]},
}
PREPARE_MESSAGE = {**PROTOCOL_MESSAGE, "anyOf": [{"required": ["changes"]}, {"required": ["account_id"]}]}
ACCOUNT_ID = [path_uuid_parameter("account_id")]


def batch_of(message: dict[str, Any]) -> dict[str, Any]:
    """A batch message: `transfers`, each entry shaped as the single route's body (PARTICIPANT_BATCH_MAX at most)."""
    transfers = {"type": "array", "minItems": 1, "maxItems": PARTICIPANT_BATCH_MAX, "items": message}
    return obj({"transfers": transfers})


# A decision batch may carry prepares (`prepare`), which the participant runs after the decisions.
DECISION_BATCH = obj(
    {
        **batch_of(PROTOCOL_MESSAGE)["properties"],
        "prepare": {"type": "array", "maxItems": PARTICIPANT_BATCH_MAX, "items": PREPARE_MESSAGE},
    },
    required=("transfers",),
)


BATCH_VOTES = obj({"votes": array_of(VOTE)})
BATCH_RESULTS = obj(
    {
        "results": array_of(
            obj(
                {
                    "transaction_id": UUID_SCHEMA,
                    "acknowledged": {"type": "boolean"},
                    "error": {
                        "anyOf": [{"type": "null"}, obj({"code": {"type": "string"}, "message": {"type": "string"}})]
                    },
                }
            )
        )
    }
)
# A rider that met a lock is "deferred": nothing written, to be sent again as a prepare of its own.
RIDER_VOTE = obj({**VOTE["properties"], "vote": {"enum": ["yes", "no", "deferred"]}})
# The votes are missing when the prepares riding the message could not run (the database unavailable).
DECISION_BATCH_RESULTS = obj({**BATCH_RESULTS["properties"], "votes": array_of(RIDER_VOTE)}, required=("results",))
READERS = "(owner, teller, admin, service)"


def _phase_two(summary: str) -> dict[str, Any]:
    """Commit and abort take the same message and give the same answer."""
    return {"post": operation(summary, DECISION, body=PROTOCOL_MESSAGE, errors=CHANGE_ERRORS, tags=PROTOCOL)}


def openapi_document(*, demo_endpoints: bool) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/accounts": {
            "post": operation("open an account (teller, admin)", ACCOUNT, status=201, body=OPEN_ACCOUNT, tags=ACCOUNTS)
        },
        "/accounts/owners": {
            "post": operation(
                "the owner of each named account; an unknown account is left out (service, teller, admin)",
                OWNERS,
                body=OWNER_LOOKUP,
                tags=ACCOUNTS,
            )
        },
        "/accounts/customer/{customer_id}": {
            "get": operation(
                "a customer's accounts (owner, teller, admin, service)",
                array_of(ACCOUNT),
                parameters=[path_uuid_parameter("customer_id")],
                tags=ACCOUNTS,
            )
        },
        "/accounts/{account_id}": {
            "get": operation(f"an account {READERS}", ACCOUNT, parameters=ACCOUNT_ID, tags=ACCOUNTS)
        },
        "/accounts/{account_id}/effective-balance": {
            "get": operation(
                f"balance after pending debits {READERS}", EFFECTIVE_BALANCE, parameters=ACCOUNT_ID, tags=ACCOUNTS
            )
        },
        "/accounts/{account_id}/ledger": {
            "get": operation(
                f"committed changes, newest first {READERS}",
                array_of(LEDGER_ENTRY),
                parameters=ACCOUNT_ID + PAGE_PARAMETERS,
                tags=ACCOUNTS,
            )
        },
        "/accounts/{account_id}/balance": {
            "patch": operation(
                "set a balance (admin; 409 while a transfer holds the account)",
                ACCOUNT,
                body=SET_BALANCE,
                parameters=ACCOUNT_ID,
                errors=CHANGE_ERRORS,
                tags=ACCOUNTS,
            )
        },
        "/2pc/prepare": {"post": operation("phase one: lock and vote", VOTE, body=PREPARE_MESSAGE, tags=PROTOCOL)},
        "/2pc/commit": _phase_two("phase two: apply and release"),
        "/2pc/abort": _phase_two("phase two: release (a tombstone when nothing was prepared)"),
        "/2pc/prepare-batch": {
            "post": operation(
                "phase one for many transfers: a vote per transfer, in message order",
                BATCH_VOTES,
                body=batch_of(PREPARE_MESSAGE),
                tags=PROTOCOL,
            )
        },
        "/2pc/commit-batch": {
            "post": operation(
                "phase two for many transfers: a result per transfer (a refused one carries its error); then the "
                "prepares riding the message, a vote each",
                DECISION_BATCH_RESULTS,
                body=DECISION_BATCH,
                tags=PROTOCOL,
            )
        },
        "/2pc/abort-batch": {
            "post": operation(
                "phase two for many transfers: release, or tombstone; a result per transfer; then the prepares "
                "riding the message, a vote each",
                DECISION_BATCH_RESULTS,
                body=DECISION_BATCH,
                tags=PROTOCOL,
            )
        },
        "/2pc/status/{account_id}": {
            "get": operation(
                "an account's lock (service, teller, admin)", LOCK_STATUS, parameters=ACCOUNT_ID, tags=PROTOCOL
            )
        },
        "/2pc/status/{account_id}/{transaction_id}": {
            "get": operation(
                "this account's leg of a transfer (service, teller, admin)",
                LEG,
                parameters=ACCOUNT_ID + [path_uuid_parameter("transaction_id")],
                tags=PROTOCOL,
            )
        },
    }
    paths["/2pc/locks"] = {
        "get": operation(
            "the accounts locked by a prepared transfer right now, oldest first (service, teller, admin)",
            array_of(LOCK_STATUS),
            parameters=[query_int_parameter("limit", minimum=1, maximum=MAX_LOCKS_LISTED, default=MAX_LOCKS_LISTED)],
            tags=PROTOCOL,
        )
    }
    if demo_endpoints:
        paths["/demo/failpoints"] = {
            "post": operation(
                "DEMO ONLY: crash or stall this participant at a failpoint, once, for the next transfer (admin)",
                ARMED,
                body=ARM_FAILPOINT,
                errors=(400, 401, 403),
                tags=("demo",),
            )
        }
        withdraw = operation(
            "DEMO ONLY: a racy withdrawal without locking (admin)",
            ACCOUNT,
            body=WITHDRAW,
            parameters=ACCOUNT_ID,
            errors=CHANGE_ERRORS,
            tags=ACCOUNTS,
        )
        answer = withdraw["responses"]["200"]["content"][JSON]["schema"]  # plus the original's top-level warning
        answer["properties"]["warning"] = {"type": "string"}
        answer["required"].append("warning")
        paths["/accounts/{account_id}/unsafe-withdraw"] = {"post": withdraw}
    return document("accounts-service", "Balances, the ledger, and the two-phase-commit participant.", paths)
