"""JSON in and out with exact money: numbers parse into Decimal and Decimals are written as numbers."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from shared.money import money_text

MAX_NESTING_DEPTH = 32


class JsonInputError(ValueError):
    """The text is not acceptable JSON for this API."""


def loads(text: str | bytes) -> Any:
    """Strict parse: Decimal numbers, no NaN/Infinity, no duplicate keys, bounded nesting."""
    try:
        value = json.loads(
            text,
            parse_float=Decimal,
            parse_int=_parse_int,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise JsonInputError(f"malformed JSON: {error}") from None
    if _depth(value) > MAX_NESTING_DEPTH:
        raise JsonInputError("JSON nested too deeply")
    _check_text(value)
    return value


def _check_text(value: Any) -> None:
    """Every string (and key) must be storable: PostgreSQL text holds no NUL, UTF-8 no unpaired surrogate."""
    if isinstance(value, str):
        if "\x00" in value:
            raise JsonInputError("text must not contain the NUL character (\\u0000)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonInputError("text must not contain unpaired surrogates") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


def _parse_int(text: str) -> int:
    if len(text) > 40:
        raise JsonInputError("number too large")
    return int(text)


def _reject_constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not a number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JsonInputError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_NESTING_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(item, level + 1) for item in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(item, level + 1) for item in value), default=level)
    return level


def dumps(value: Any) -> str:
    """Serialise, writing Decimals as exact JSON numbers (never through float)."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, parts: list[str]) -> None:
    if isinstance(value, dict):
        parts.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                parts.append(",")
            parts.append(json.dumps(str(key)))
            parts.append(":")
            _write(item, parts)
        parts.append("}")
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _write(item, parts)
        parts.append("]")
    else:
        parts.append(_scalar(value))


def _scalar(value: Any) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a JSON number")
        return money_text(value)
    if isinstance(value, float):
        # Never produced by our code; refuse rather than write an inexact number.
        raise TypeError(f"float {value!r} in a JSON answer: use Decimal")
    if isinstance(value, (UUID, Enum)):
        return json.dumps(str(value.value if isinstance(value, Enum) else value))
    if isinstance(value, (datetime, date)):
        return json.dumps(value.isoformat())
    return json.dumps(value)
