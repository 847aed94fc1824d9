"""Worst-case values in every string field of every route are refused (4xx) in bounded time: no regex or
parser on any path costs more than linear time in a value the body limit allows.

The fields come from the services' own OpenAPI documents, so a new route or field is covered as it is
written; a route with a body and no sample below fails `test_every_body_route_has_a_sample`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from harness.system import SERVICES
from shared import jsonio
from shared.params import MAX_BODY_BYTES
from tests.conftest import coordinator_token, token
from tests.e2e.conftest import ALICE, ALICE_MAIN, BOB_MAIN, Api

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANSWER_BOUND_S = 0.100
# aiohttp refuses a request line or header over 8190 bytes itself; parameters get the most it lets through.
PARAMETER_LENGTH = 8000
BODY_SLACK_BYTES = 512  # room for the rest of the body, so the value is as long as the body limit allows
SOME_ID = "0b9e3f4c-2d1a-4e5f-8a7b-6c5d4e3f2a1b"
NEW_CUSTOMER = {
    "name": "Bounded Input",
    "address": "1 Long Road",
    "contact_info": {"email": "bounded@example.com", "phone": "+1 555 0100"},
    "username": "bounded-user",
    "password": "a-long-password",
}
ONE_LEG = {
    "transaction_id": SOME_ID,
    "changes": [{"account_id": str(ALICE_MAIN), "change": "-1"}],
    "account_id": str(ALICE_MAIN),
    "amount": "-1",
}
RIDER = {**ONE_LEG, "transaction_id": "1c0a4f5d-3e2b-4f60-9b8c-7d6e5f4a3b2c"}  # a prepare riding a decision
# (METHOD, path template) -> a valid body, so each replaced field is checked as deep as the route goes.
SAMPLE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/auth/login"): {"username": "alice", "password": "not-alices-password"},
    ("POST", "/auth/refresh"): {"refresh_token": "not-a-refresh-token"},
    ("POST", "/customers"): {**NEW_CUSTOMER, "customer_id": SOME_ID},
    ("PATCH", "/customers/{customer_id}"): {key: NEW_CUSTOMER[key] for key in ("name", "address", "contact_info")},
    ("POST", "/accounts"): {"customer_id": str(ALICE), "initial_balance": "1"},
    ("POST", "/accounts/owners"): {"account_ids": [str(ALICE)]},
    ("PATCH", "/accounts/{account_id}/balance"): {"balance": "1"},
    ("POST", "/accounts/{account_id}/unsafe-withdraw"): {"amount": "1"},
    ("POST", "/2pc/prepare"): ONE_LEG,
    ("POST", "/2pc/commit"): ONE_LEG,
    ("POST", "/2pc/abort"): ONE_LEG,
    ("POST", "/2pc/prepare-batch"): {"transfers": [ONE_LEG]},
    ("POST", "/2pc/commit-batch"): {"transfers": [ONE_LEG], "prepare": [RIDER]},
    ("POST", "/2pc/abort-batch"): {"transfers": [ONE_LEG], "prepare": [RIDER]},
    ("POST", "/transfers"): {
        "source_account_id": str(ALICE_MAIN),
        "destination_account_id": str(BOB_MAIN),
        "amount": "1",
    },
    # Its string fields are enums: every worst-case value is refused, so nothing is ever armed here.
    ("POST", "/demo/failpoints"): {"failpoint": "after_prepare_before_answer", "action": "stall", "seconds": 0},
}
PATH_VALUES = {
    "customer_id": str(ALICE),
    "account_id": str(ALICE_MAIN),
    "transaction_id": SOME_ID,
    "status": "committed",
}


def worst_cases(length: int) -> dict[str, str]:
    """Texts that make careless patterns backtrack: runs of one class ending in what no pattern accepts."""
    return {
        "spaces": " " * (length - 1) + "x",
        "digit-spaces": "1" + " " * (length - 2) + "x",
        "word": "a" * (length - 1) + "@",
        "digits": "9" * (length - 1) + ".",
        "dotted": ("a." * length)[: length - 1] + "@",
    }


def string_fields(schema: dict[str, Any], path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The paths (keys, and 0 for an array's first item) of every string-typed leaf of a body schema."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    alternatives = schema.get("anyOf", [])
    if "string" in types or any("string" in [alt.get("type")] for alt in alternatives):
        yield path
    for name, child in schema.get("properties", {}).items():
        yield from string_fields(child, (*path, name))
    if "items" in schema:
        yield from string_fields(schema["items"], (*path, 0))


def replaced(body: Any, path: tuple[Any, ...], value: str) -> Any:
    copy = jsonio.loads(jsonio.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


def caller(path: str) -> str | None:
    if path == "/auth/login":
        return None
    return coordinator_token() if path.startswith("/2pc/") else token("admin")


def concrete(template: str, overrides: dict[str, str] | None = None) -> str:
    values = {**PATH_VALUES, **(overrides or {})}
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


async def documents(api: Api) -> dict[str, dict[str, Any]]:
    result = {}
    for spec in SERVICES:
        async with api.session.get(api.system.url(spec.name) + "/openapi.json") as response:
            result[spec.name] = jsonio.loads(await response.text())
    return result


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, spec in item.items():
            yield method.upper(), path, spec


async def timed(
    api: Api, method: str, service: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, float]:
    """Status and seconds; the body is read but not parsed (the HTTP parser's own 400 is plain text)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if caller(path):
        all_headers["Authorization"] = f"Bearer {caller(path)}"
    data = None if body is None else jsonio.dumps(body)
    started = time.perf_counter()
    async with api.session.request(method, api.system.url(service) + path, data=data, headers=all_headers) as response:
        await response.read()
        return response.status, time.perf_counter() - started


async def assert_refused_quickly(api: Api, case: str, method: str, service: str, path: str, **kwargs: Any) -> None:
    status, elapsed_s = await timed(api, method, service, path, **kwargs)
    if elapsed_s > ANSWER_BOUND_S:  # one retry absorbs a scheduling hiccup; a slow pattern is slow twice
        status, elapsed_s = await timed(api, method, service, path, **kwargs)
    assert 400 <= status < 500, (case, status)
    assert elapsed_s <= ANSWER_BOUND_S, f"{case}: {elapsed_s * 1000:.0f} ms"


async def test_every_body_route_has_a_sample(api: Api) -> None:
    with_body = {
        (method, path)
        for document in (await documents(api)).values()
        for method, path, spec in operations(document)
        if "requestBody" in spec
    }
    assert with_body - set(SAMPLE_BODIES) == set()


async def test_worst_case_body_values_are_refused_within_the_bound(api: Api) -> None:
    checked = 0
    for service, document in (await documents(api)).items():
        for method, template, spec in operations(document):
            schema = spec.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if schema is None:
                continue
            sample = SAMPLE_BODIES[(method, template)]
            for field in string_fields(schema):
                length = MAX_BODY_BYTES - len(jsonio.dumps(sample)) - BODY_SLACK_BYTES
                for name, value in worst_cases(length).items():
                    body = replaced(sample, field, value)
                    assert len(jsonio.dumps(body)) <= MAX_BODY_BYTES, "the body itself must fit the limit"
                    await assert_refused_quickly(
                        api, f"{method} {template} {field} {name}", method, service, concrete(template), body=body
                    )
                    checked += 1
    assert checked > 100, checked


async def test_worst_case_parameters_are_refused_within_the_bound(api: Api) -> None:
    checked = 0
    for service, document in (await documents(api)).items():
        for method, template, spec in operations(document):
            sample = SAMPLE_BODIES.get((method, template))
            for parameter in spec.get("parameters", []):
                for name, value in worst_cases(PARAMETER_LENGTH).items():
                    case = f"{method} {template} {parameter['name']} {name}"
                    quoted = value.replace(" ", "%20").replace("@", "%40")
                    path, headers = concrete(template), None
                    if parameter["in"] == "path":
                        path = concrete(template, {parameter["name"]: quoted})
                    elif parameter["in"] == "query":
                        path = f"{path}?{parameter['name']}={quoted}"
                    else:
                        headers = {parameter["name"]: "k" + value[1:]}  # HTTP strips a header's spaces
                    await assert_refused_quickly(api, case, method, service, path, body=sample, headers=headers)
                    checked += 1
    assert checked > 50, checked


async def test_a_fresh_customer_with_a_worst_case_phone_stays_unwritten(api: Api) -> None:
    customer_id = str(uuid.uuid4())
    body = replaced(
        {**NEW_CUSTOMER, "customer_id": customer_id, "username": f"u{customer_id[:8]}"},
        ("contact_info", "phone"),
        "1" + " " * (MAX_BODY_BYTES - 1024) + "x",
    )
    await assert_refused_quickly(api, "phone", "POST", "customer_service", "/customers", body=body)
    answer = await api.call("GET", "customer_service", f"/customers/{customer_id}", auth=token("admin"))
    assert answer.status == 404


@pytest.mark.parametrize("amount", ["1." + "0" * 16_400, "1.00000", "1" * 16, '"1.00000"'])
async def test_an_amount_written_too_long_is_a_400_and_moves_nothing(api: Api, amount: str) -> None:
    """Found: `1.` and 16,400 zeros passed validation and asyncpg could not encode it -> 500."""
    before = (await api.balance(ALICE_MAIN), await api.balance(BOB_MAIN))
    raw = (
        '{"source_account_id": "%s", "destination_account_id": "%s", "amount": %s}' % (ALICE_MAIN, BOB_MAIN, amount)
    ).encode()
    answer = await api.call("POST", "transactions_service", "/transfers", raw=raw, auth=token("teller"))
    assert answer.status == 400, answer.body
    assert (await api.balance(ALICE_MAIN), await api.balance(BOB_MAIN)) == before
