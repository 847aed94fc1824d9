"""Schemathesis against each live service, driven by the document it serves at GET /openapi.json.

For every documented operation, hypothesis generates schema-valid requests (with random ids and with the
demo data's real ids) and schema-invalid ones, sent with a valid token of one role. Every answer must:

- not be a 5xx;
- have a status the operation documents, with the documented content type and a body that fits its schema;
- reject schema-invalid input with a 4xx (negative data rejection);
- change no data when it is a 4xx. "Data" is the business state of the three databases: every column of every
  customer row and the number of logins; each account's owner, balance, lock and pending change (timestamps
  are not data); the number of committed ledger entries and of all participant log rows; the number of
  transfers and of protocol events. One exemption, by design of the protocol: POST /transfers answering 409
  is a transfer the protocol aborted, and it leaves its aborted transfer and events in the coordinator log
  and aborted legs (tombstones) in the participant log; balances, locks and committed entries still must not
  move. (POST /2pc/prepare's NO vote also writes a tombstone, but it answers 200, so it is not a 4xx.)

The system is this module's own (fresh databases, demo data), so what the fuzzer writes touches no other test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from harness.local_postgres import LocalPostgres
from harness.system import LocalSystem
from tests.conftest import coordinator_token, token
from tests.e2e.conftest import ALICE, ALICE_MAIN, BOB_MAIN, start_system

pytestmark = pytest.mark.e2e

SERVICES = ("customer_service", "accounts_service", "transactions_service")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
ADMIN_EXAMPLES_PER_OPERATION = 60
OTHER_ROLE_EXAMPLES_PER_OPERATION = 15
REQUEST_TIMEOUT_S = 30
# Operations whose every answer is text, not the JSON envelope, and that read nothing: not worth the budget.
# /demo/failpoints breaks the service on purpose (an admin body may arm a crash): tests/browser drives it.
SKIPPED_PATHS = frozenset({"/metrics", "/docs", "/openapi.json", "/demo/failpoints"})

FINGERPRINT_QUERIES = {
    "customer_service": {
        "customers": "SELECT count(*), md5(coalesce(string_agg(c::text, ',' ORDER BY c.customer_id), '')) "
        "FROM customers c",
        "logins": "SELECT count(*) FROM users",
    },
    "accounts_service": {
        "accounts": "SELECT count(*), sum(balance), md5(coalesce(string_agg(concat_ws('|', account_id, customer_id, "
        "balance, transaction_lock, pending_change), ',' ORDER BY account_id), '')) FROM accounts",
        "committed_entries": "SELECT count(*) FROM participant_log WHERE state = 'committed'",
        "participant_log": "SELECT count(*) FROM participant_log",
    },
    "transactions_service": {
        "transfers": "SELECT count(*) FROM transactions",
        "events": "SELECT count(*) FROM transaction_events",
    },
}
# What an aborted transfer (POST /transfers -> 409) may add: see the module docstring.
ABORT_MAY_CHANGE = frozenset({"participant_log", "transfers", "events"})


class Fingerprints:
    """Cheap summaries of the three databases, read over connections held for the whole run."""

    def __init__(self, system: LocalSystem) -> None:
        self.loop = asyncio.new_event_loop()
        self.connections = {
            service: self.loop.run_until_complete(asyncpg.connect(system.database_url(service))) for service in SERVICES
        }

    def read(self) -> dict[str, tuple[Any, ...]]:
        return self.loop.run_until_complete(self._read())

    async def _read(self) -> dict[str, tuple[Any, ...]]:
        values = {}
        for service, queries in FINGERPRINT_QUERIES.items():
            for name, query in queries.items():
                values[name] = tuple(await self.connections[service].fetchrow(query))
        return values

    def close(self) -> None:
        for connection in self.connections.values():
            self.loop.run_until_complete(connection.close())
        self.loop.close()


@dataclass
class FuzzRun:
    statuses: Counter = field(default_factory=Counter)
    requests: int = 0


@pytest.fixture(scope="module")
def fuzz_system(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    running = start_system(postgres, Path(tmp_path_factory.mktemp("fuzz-logs")))
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def fingerprints(fuzz_system: LocalSystem) -> Iterator[Fingerprints]:
    reader = Fingerprints(fuzz_system)
    try:
        yield reader
    finally:
        reader.close()


BODY_ID_FIELDS = {
    "customer_id": "customer_id",
    "account_id": "account_id",
    "source_account_id": "account_id",
    "destination_account_id": "other_account_id",
    "transaction_id": "transaction_id",
}


@pytest.fixture(scope="module")
def known_ids(fuzz_system: LocalSystem) -> dict[str, str]:
    """Ids that exist, so the fuzzer also reaches the success paths: demo customer and accounts, one transfer."""
    answer = requests.post(
        fuzz_system.url("transactions_service") + "/transfers",
        timeout=REQUEST_TIMEOUT_S,
        json={"source_account_id": str(ALICE_MAIN), "destination_account_id": str(BOB_MAIN), "amount": "1.00"},
        headers={"Authorization": f"Bearer {token('admin')}"},
    )
    assert answer.status_code == 200, answer.text
    return {
        "customer_id": str(ALICE),
        "account_id": str(ALICE_MAIN),
        "other_account_id": str(BOB_MAIN),
        "transaction_id": answer.json()["data"]["transaction_id"],
    }


def case_strategy(operation: Any, known: dict[str, str], bearer_token: str) -> st.SearchStrategy:
    """Valid and invalid requests, always with this role's token (an invalid token is not what is fuzzed here)."""
    auth = {"Authorization": f"Bearer {bearer_token}"}
    names = {parameter.name for parameter in operation.path_parameters}
    real = {name: value for name, value in known.items() if name in names}
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE, headers=auth),
        operation.as_strategy(GenerationMode.NEGATIVE, headers=auth),
    ]
    strategies.append(
        operation.as_strategy(GenerationMode.POSITIVE, headers=auth, path_parameters=real or None).map(
            lambda case: with_known_body_ids(case, known)
        )
    )
    return st.one_of(strategies)


def with_known_body_ids(case: Any, known: dict[str, str]) -> Any:
    """A valid case whose body ids are ones that exist (still valid: a UUID replaces a UUID)."""
    if isinstance(case.body, dict):
        for name in case.body.keys() & BODY_ID_FIELDS.keys():
            case.body[name] = known[BODY_ID_FIELDS[name]]
    return case


def fuzz_operation(
    operation: Any,
    *,
    base_url: str,
    bearer_token: str,
    examples: int,
    known: dict[str, str],
    fingerprints: Fingerprints,
    run: FuzzRun,
) -> None:
    session = requests.Session()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=case_strategy(operation, known, bearer_token))
    def check(case: Any) -> None:
        before = fingerprints.read()
        response = case.call(base_url=base_url, session=session, timeout=REQUEST_TIMEOUT_S)
        run.requests += 1
        run.statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
        if 400 <= response.status_code < 500:
            assert_unchanged(before, fingerprints.read(), case, response.status_code)

    try:
        check()
    finally:
        session.close()


def assert_unchanged(before: dict[str, Any], after: dict[str, Any], case: Any, status: int) -> None:
    aborted_transfer = case.method.upper() == "POST" and case.path == "/transfers" and status == 409
    changed = {name for name in before if before[name] != after[name]}
    if aborted_transfer:
        changed -= ABORT_MAY_CHANGE
    assert not changed, f"{case.method} {case.formatted_path} answered {status} but changed {sorted(changed)}"


def operations_of(base_url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    return [operation for operation in operations if operation.path not in SKIPPED_PATHS]


ROLE_RUNS = [
    ("admin", None, ADMIN_EXAMPLES_PER_OPERATION),
    ("teller", None, OTHER_ROLE_EXAMPLES_PER_OPERATION),
    ("customer", ALICE, OTHER_ROLE_EXAMPLES_PER_OPERATION),
    ("service", None, OTHER_ROLE_EXAMPLES_PER_OPERATION),
    ("coordinator", None, OTHER_ROLE_EXAMPLES_PER_OPERATION),  # the only caller /2pc writes accept
]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(("role", "customer_id", "examples"), ROLE_RUNS, ids=[run[0] for run in ROLE_RUNS])
def test_fuzz_finds_no_server_error_no_schema_violation_and_no_write_on_4xx(
    fuzz_system: LocalSystem,
    fingerprints: Fingerprints,
    known_ids: dict[str, str],
    service: str,
    role: str,
    customer_id: uuid.UUID | None,
    examples: int,
) -> None:
    if role == "coordinator" and service != "accounts_service":
        pytest.skip("only the participant takes coordinator tokens for more than a service token")
    base_url = fuzz_system.url(service)
    bearer_token = coordinator_token() if role == "coordinator" else token(role, customer_id)
    run = FuzzRun()
    for operation in operations_of(base_url):
        fuzz_operation(
            operation,
            base_url=base_url,
            bearer_token=bearer_token,
            examples=examples,
            known=known_ids,
            fingerprints=fingerprints,
            run=run,
        )
    print(f"fuzz {service} as {role}: {run.requests} requests, statuses {dict(sorted(run.statuses.items()))}")
    assert run.requests > 0
