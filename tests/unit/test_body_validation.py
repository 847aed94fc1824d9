"""shared.body_validation: each route's body schema, compiled once, checks fast and names what is wrong.

The fast validator (jsonschema-rs) decides; the describing one (jsonschema) only names the field of a
refused body. They must agree, or a body would pass one and not the other: checked on bodies of every kind.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

import jsonschema
import pytest

from accounts_service import api_schema as accounts_schema
from customer_service import api_schema as customers_schema
from shared.body_validation import UNDESCRIBED_MESSAGE, RouteBodyValidator, _described_by_rust, body_validators
from shared.errors import ValidationError
from transactions_service import api_schema as transactions_schema

ID = str(uuid.uuid4())
OTHER = str(uuid.uuid4())
VALIDATORS = {
    **{
        ("transactions",) + key: value for key, value in body_validators(transactions_schema.openapi_document()).items()
    },
    **{
        ("accounts",) + key: value
        for key, value in body_validators(accounts_schema.openapi_document(demo_endpoints=True)).items()
    },
    **{("customers",) + key: value for key, value in body_validators(customers_schema.openapi_document()).items()},
}
TRANSFER = VALIDATORS[("transactions", "POST", "/transfers")]
PREPARE = VALIDATORS[("accounts", "POST", "/2pc/prepare")]

AMOUNTS: list[Any] = [
    Decimal("0.1"),
    Decimal("999999999.9999"),
    Decimal("1E+3"),
    Decimal("1E+999999"),
    Decimal("-1"),
    Decimal("0"),
    1,
    0,
    10**30,
    "1.25",
    "1e3",
    "abc",
    "5\n",
    "",
    "9" * 41,
    True,
    None,
    [],
    {},
]
IDS: list[Any] = [ID, ID.upper(), "not-a-uuid", f"{{{ID}}}", f"urn:uuid:{ID}", ID.replace("-", ""), 42, None, ""]


def transfer_bodies() -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = [
        {"source_account_id": ID, "destination_account_id": OTHER, "amount": amount} for amount in AMOUNTS
    ]
    bodies += [{"source_account_id": id_, "destination_account_id": OTHER, "amount": 1} for id_ in IDS]
    bodies += [
        {"source_account_id": ID, "destination_account_id": OTHER},
        {"source_account_id": ID, "amount": 1},
        {"source_account_id": ID, "destination_account_id": OTHER, "amount": 1, "transaction_id": None},
        {"source_account_id": ID, "destination_account_id": OTHER, "amount": 1, "transaction_id": "x"},
        {"source_account_id": ID, "destination_account_id": OTHER, "amount": 1, "padding": "x" * 1000},
    ]
    return bodies


def prepare_bodies() -> list[dict[str, Any]]:
    change = {"account_id": ID, "change": Decimal("-5")}
    return [
        {"transaction_id": ID, "changes": [change]},
        {"transaction_id": ID, "changes": [change] * 17},
        {"transaction_id": ID, "changes": []},
        {"transaction_id": ID, "changes": [{"account_id": ID}]},
        {"transaction_id": ID, "changes": ["x"]},
        {"transaction_id": ID, "account_id": ID, "amount": -5},
        {"transaction_id": ID, "account_id": ID},
        {"transaction_id": ID},
        {"changes": [change]},
        *({"transaction_id": ID, "changes": [{"account_id": ID, "change": amount}]} for amount in AMOUNTS),
    ]


def fast_and_described(validator: RouteBodyValidator, body: dict[str, Any]) -> tuple[bool, bool]:
    described = jsonschema.exceptions.best_match(validator._describe.iter_errors(body))
    return validator._check.is_valid(body), described is None


@pytest.mark.parametrize("body", transfer_bodies())
def test_both_validators_agree_on_transfer_bodies(body):
    fast, described = fast_and_described(TRANSFER, body)
    assert fast == described


@pytest.mark.parametrize("body", prepare_bodies())
def test_both_validators_agree_on_protocol_messages(body):
    fast, described = fast_and_described(PREPARE, body)
    assert fast == described


def test_every_route_validator_compiles_and_refuses_a_wrong_type():
    assert len(VALIDATORS) >= 8
    for validator in VALIDATORS.values():
        with pytest.raises(ValidationError):
            validator.validate({"customer_id": 5, "amount": True, "transaction_id": 7, "username": 1, "failpoint": 2})


def test_a_decimal_amount_is_a_number_and_a_bool_is_not():
    TRANSFER.validate({"source_account_id": ID, "destination_account_id": OTHER, "amount": Decimal("0.1")})
    with pytest.raises(ValidationError) as caught:
        TRANSFER.validate({"source_account_id": ID, "destination_account_id": OTHER, "amount": True})
    assert caught.value.details == {"field": "amount"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source_account_id": ID, "amount": 1}, "destination_account_id"),
        ({"source_account_id": ID, "destination_account_id": "not-a-uuid", "amount": 1}, "destination_account_id"),
        ({"source_account_id": ID, "destination_account_id": OTHER, "amount": Decimal("-1")}, "amount"),
    ],
)
def test_a_refused_body_names_its_field(body, field):
    with pytest.raises(ValidationError) as caught:
        TRANSFER.validate(body)
    assert caught.value.details == {"field": field}
    assert field in caught.value.message


def test_a_trailing_newline_fails_a_closing_dollar_in_both():
    """Python's `$` matches before a final newline, ECMA 262's (and jsonschema-rs's) does not: read as ECMA."""
    body = {"source_account_id": ID, "destination_account_id": OTHER, "amount": "5\n"}
    assert fast_and_described(TRANSFER, body) == (False, False)
    with pytest.raises(ValidationError) as caught:
        TRANSFER.validate(body)
    assert caught.value.details == {"field": "amount"}


def test_a_body_only_the_fast_validator_refuses_is_still_a_named_400():
    assert _described_by_rust(None) == ("body", UNDESCRIBED_MESSAGE)
    (error,) = list(TRANSFER._check.iter_errors({"source_account_id": ID, "destination_account_id": OTHER}))
    assert _described_by_rust(error) == ("body", "body fails required")


def test_a_long_value_under_a_pattern_is_checked_in_linear_time():
    login = VALIDATORS[("customers", "POST", "/auth/login")]
    started = time.perf_counter()
    for _ in range(10):
        with pytest.raises(ValidationError):
            login.validate({"username": " " * 60_000 + "x", "password": "p" * 60_000})
        with pytest.raises(ValidationError):
            TRANSFER.validate({"source_account_id": ID, "destination_account_id": OTHER, "amount": "1" * 60_000 + "x"})
    assert time.perf_counter() - started < 1.0
