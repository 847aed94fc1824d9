"""The plans PostgreSQL picks for the statements of a transfer, read with EXPLAIN on the services' own databases.

It looks behind the API on purpose (a diagnostic, like the auditor), and imports each statement from the
service that runs it, so it explains the real SQL and not a copy that could drift. Plain EXPLAIN plans
a statement without running it, so the data-modifying ones write nothing. The recovery loops' statements
are off the transfer's path but run on a clock, so a scan there would cost every second: they are shown too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from harness.scale_fixture import scale_account_id, scale_customer_id, scale_transfer_id

PLAN_LIMIT = 100  # the recovery statements' batch bound, as the services use it


def _event_params(transaction_id: uuid.UUID) -> dict[str, Any]:
    return {
        "event_transaction_ids": [transaction_id],
        "event_types": ["decision"],
        "event_participants": [None],
        "event_details": ["{}"],
        "event_times": [datetime.now(UTC)],
    }


def coordinator_statements() -> list[tuple[str, Any, dict[str, Any]]]:
    """The coordinator's statements, each for a batch of one (a batch of many plans the same way)."""
    from transactions_service import db  # the statements as the coordinator runs them

    source, destination, customer = scale_account_id(0), scale_account_id(1), scale_customer_id(0)
    known = scale_transfer_id(0)
    new_id = uuid.uuid4()
    return [
        (
            "accept",
            db._INSERT_TRANSFERS,
            {
                **_event_params(new_id),
                "transaction_ids": [new_id],
                "source_account_ids": [source],
                "destination_account_ids": [destination],
                "amounts": [Decimal("1.00")],
                "idempotency_keys": [None],
                "request_fingerprints": ["f" * 64],
                "requested_bys": [str(customer)],
                "requested_by_customer_ids": [customer],
            },
        ),
        (
            "decide",
            db._DECIDE,
            {
                **_event_params(known),
                "transaction_ids": [known],
                "statuses": ["committed"],
                "reasons": [None],
                "completion_grace_s": 10.0,
            },
        ),
        (
            "complete",
            db._RECORD_COMPLETIONS,
            {
                **_event_params(known),
                "transaction_ids": [known],
                "all_acknowledged": [True],
                "retry_first_s": 1.0,
                "retry_max_s": 60.0,
            },
        ),
        ("read back decisions", db._SELECT_TRANSFERS, {"transaction_ids": [known]}),
        ("read transfer", db._SELECT_TRANSFER, {"transaction_id": known}),
        ("recovery: abort orphans", db._ABORT_ORPHANS, {"deadline_s": 30.0, "reason": "timeout", "limit": PLAN_LIMIT}),
        ("recovery: claim unfinished", db._CLAIM_UNFINISHED, {"lease_s": 11.0, "limit": PLAN_LIMIT}),
        ("metrics: count unfinished", db._COUNT_UNFINISHED, {}),
    ]


def participant_statements() -> list[tuple[str, Any, dict[str, Any]]]:
    from accounts_service import db  # the statements as the participant runs them

    source, destination, known = scale_account_id(0), scale_account_id(1), scale_transfer_id(0)
    legs = {"account_ids": sorted([source, destination]), "changes": [Decimal("-1.00"), Decimal("1.00")]}
    return [
        ("ownership check", db._SELECT_ACCOUNT, {"account_id": source}),
        ("prepare", db.PREPARE_LEGS, {"transaction_id": uuid.uuid4(), **legs}),
        ("commit", db.COMMIT_LEGS, {"transaction_id": known, "account_ids": legs["account_ids"]}),
        (
            "vote no: tombstone",
            db._INSERT_TOMBSTONE,
            {
                "transaction_id": uuid.uuid4(),
                "account_id": source,
                "change": Decimal("-1.00"),
                "reason": "insufficient_funds",
            },
        ),
        ("recovery: in doubt", db._SELECT_IN_DOUBT, {"in_doubt_s": 30.0, "limit": PLAN_LIMIT}),
        ("recovery: purge tombstones", db._PURGE_TOMBSTONES, {"retention_s": 86400.0, "limit": PLAN_LIMIT}),
        ("metrics: count locks", db._COUNT_LOCKS, {"in_doubt_s": 30.0}),
    ]


STATEMENTS: dict[str, Callable[[], list[tuple[str, Any, dict[str, Any]]]]] = {
    "transactions_service": coordinator_statements,
    "accounts_service": participant_statements,
}


async def explain_hot_path(database_urls: dict[str, str]) -> list[dict[str, Any]]:
    """Per statement: its service, its name, the sequential scans in its plan, and every plan node."""
    from sqlalchemy import text

    from shared.database import create_engine

    plans = []
    for service, statements in STATEMENTS.items():
        engine = create_engine(database_urls[service], pool_size=1)
        try:
            async with engine.connect() as connection:
                for name, statement, params in statements():
                    result = await connection.execute(text("EXPLAIN (FORMAT JSON) " + statement.text), params)
                    plans.append(_summary(service, name, result.scalar_one()))
                await connection.rollback()
        finally:
            await engine.dispose()
    return plans


def _summary(service: str, name: str, explained: Any) -> dict[str, Any]:
    nodes = list(_nodes((explained if isinstance(explained, list) else _json(explained))[0]["Plan"]))
    return {
        "service": service,
        "statement": name,
        "nodes": [_describe(node) for node in nodes],
        "scans": [_describe(node) for node in nodes if node["Node Type"] == "Seq Scan"],
    }


def _json(raw: str) -> Any:
    import json

    return json.loads(raw)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _describe(node: dict[str, Any]) -> str:
    kind = node.get("Operation") if node["Node Type"] == "ModifyTable" else node["Node Type"]
    relation = f" on {node['Relation Name']}" if "Relation Name" in node else ""
    index = f" using {node['Index Name']}" if "Index Name" in node else ""
    return f"{kind}{relation}{index}"
