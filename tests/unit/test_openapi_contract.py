"""Each service's OpenAPI document describes exactly its routes, is valid OpenAPI 3.1, and is what validates bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate as validate_openapi

from accounts_service.app import create_app as create_accounts_app
from accounts_service.settings import Settings as AccountsSettings
from customer_service.app import create_app as create_customer_app
from customer_service.settings import Settings as CustomerSettings
from shared import jsonio
from shared.api_docs import OPENAPI_KEY, docs_html
from shared.body_validation import BodyValidator, body_validators
from shared.schemas import money_input
from tests.conftest import TEST_KEYS
from transactions_service.app import create_app as create_transactions_app
from transactions_service.settings import Settings as TransactionsSettings

UNUSED_DATABASE = "postgresql://nobody@127.0.0.1:1/none"
# aiohttp adds HEAD for every GET; CORS preflight (OPTIONS) is answered by middleware, not documented per route.
UNDOCUMENTED_METHODS = {"HEAD", "OPTIONS"}


def build_apps() -> dict[str, web.Application]:
    """The apps as `create_app` builds them (no I/O happens before they start)."""
    common = {"database_url": UNUSED_DATABASE, **TEST_KEYS}
    return {
        "customer_service": create_customer_app(CustomerSettings(**common)),
        "accounts_service": create_accounts_app(AccountsSettings(**common, demo_endpoints=True)),
        "accounts_service_without_demo": create_accounts_app(AccountsSettings(**common, demo_endpoints=False)),
        "transactions_service": create_transactions_app(TransactionsSettings(**common)),
    }


APPS = build_apps()


def routed_operations(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method not in UNDOCUMENTED_METHODS and route.resource is not None
    }


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_route_is_documented_and_every_documented_operation_is_routed(name: str) -> None:
    app = APPS[name]
    routed, documented = routed_operations(app), documented_operations(app[OPENAPI_KEY])
    assert routed - documented == set(), "routes the document does not describe"
    assert documented - routed == set(), "documented operations with no route"


@pytest.mark.parametrize("name", sorted(APPS))
def test_document_is_valid_openapi_3_1(name: str) -> None:
    document = jsonio.loads(jsonio.dumps(APPS[name][OPENAPI_KEY]))  # exactly what GET /openapi.json serves
    assert document["openapi"].startswith("3.1")
    validate_openapi(document)


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_body_operation_has_a_validator_and_docs_list_every_path(name: str) -> None:
    document = APPS[name][OPENAPI_KEY]
    with_body = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if "requestBody" in spec
    }
    assert set(body_validators(document)) == with_body
    page = docs_html(document)
    assert all(f"<code>{path}</code>" in page.replace("&#x27;", "'") for path in document["paths"])
    assert "<script" not in page


@pytest.mark.parametrize("value", [Decimal("10.25"), 10, "10.25", "1e3", Decimal("0.0001")])
def test_money_accepts_numbers_parsed_as_decimal_and_numeric_text(value: Any) -> None:
    assert BodyValidator(money_input()).is_valid(value)


@pytest.mark.parametrize(
    "value", [True, None, "ten", "", "1_000", "NaN", Decimal(0), Decimal("-1"), Decimal("1000000001"), [], {}]
)
def test_money_rejects_what_is_not_a_positive_amount(value: Any) -> None:
    assert not BodyValidator(money_input()).is_valid(value)


def schema_patterns(value: Any) -> list[dict[str, Any]]:
    """Every schema (dict) in a document that carries a `pattern`."""
    if isinstance(value, dict):
        found = [value] if isinstance(value.get("pattern"), str) else []
        return found + [schema for item in value.values() for schema in schema_patterns(item)]
    if isinstance(value, list):
        return [schema for item in value for schema in schema_patterns(item)]
    return []


ADVERSARIAL_LENGTH = 20_000
ADVERSARIAL_TEXTS = [
    " " * ADVERSARIAL_LENGTH + "x",
    "1" + " " * ADVERSARIAL_LENGTH + "x",
    "a" * ADVERSARIAL_LENGTH + "\x01",
    "!" * ADVERSARIAL_LENGTH + "\x01",
    "9" * ADVERSARIAL_LENGTH + "..",
    "a@" * ADVERSARIAL_LENGTH,
    "a." * ADVERSARIAL_LENGTH + "@",
]


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_pattern_is_bounded_and_linear(name: str) -> None:
    """Found: the phone pattern `[0-9 ().-]*\\s*$` backtracked quadratically (8,000 spaces = 0.27 s)."""
    import re
    import time

    schemas = schema_patterns(APPS[name][OPENAPI_KEY])
    assert schemas or name.startswith("accounts"), "the customer and transactions documents hold patterns"
    for schema in schemas:
        assert isinstance(schema.get("maxLength"), int), f"{schema['pattern']} needs a maxLength"
        compiled = re.compile(schema["pattern"])
        for text in ADVERSARIAL_TEXTS:
            started = time.perf_counter()
            compiled.search(text)
            assert time.perf_counter() - started < 0.1, (schema["pattern"], text[:3])  # quadratic: seconds


def test_a_too_long_value_never_meets_the_pattern() -> None:
    validator = BodyValidator({"type": "string", "maxLength": 4, "pattern": "^(a|a)*$"})
    errors = [error.validator for error in validator.iter_errors("a" * 40 + "b")]
    assert errors == ["maxLength"]
