"""The JSON Schemas of our values: ids, times, money (as answered and as requested), objects, arrays and the
answer envelopes. shared/openapi.py builds operations from them."""

from __future__ import annotations

from typing import Any

from shared.money import DEFAULT_MAX_AMOUNT

UUID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid"}
TIMESTAMP: dict[str, Any] = {"type": "string", "format": "date-time"}
# Answers write money as exact JSON numbers; requests may also send a numeric string (shared/money.py).
MONEY: dict[str, Any] = {"type": "number"}
MAX_AMOUNT = int(DEFAULT_MAX_AMOUNT)
MONEY_TEXT_PATTERN = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or null (a lock that is not held, a time that has not come)."""
    return {**schema, "type": [schema["type"], "null"]}


def money_input(*, allow_zero: bool = False, signed: bool = False) -> dict[str, Any]:
    """A money amount in a request: a JSON number or numeric text; the handler still checks places and range."""
    number: dict[str, Any] = {"type": "number", "maximum": MAX_AMOUNT}
    if signed:
        number["minimum"] = -MAX_AMOUNT
    elif allow_zero:
        number["minimum"] = 0
    else:
        number["exclusiveMinimum"] = 0
    text = {"type": "string", "maxLength": 40, "pattern": MONEY_TEXT_PATTERN}
    return {"anyOf": [number, text], "description": "decimal amount, at most 4 places (number or numeric string)"}


def obj(properties: dict[str, Any], *, required: tuple[str, ...] | None = None, closed: bool = False) -> dict[str, Any]:
    """An object schema; by default every property is required (answers always carry all their keys)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def array_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


ERROR_ENVELOPE = obj(
    {
        "success": {"const": False},
        "error": obj(
            {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}}, required=("code", "message")
        ),
    },
    closed=True,
)


def success(data: dict[str, Any]) -> dict[str, Any]:
    return obj(
        {"success": {"const": True}, "data": data, "message": {"type": "string"}},
        required=("success", "data"),
        closed=True,
    )
