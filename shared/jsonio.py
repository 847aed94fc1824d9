"""JSON in and out with exact money: numbers parse into Decimal and Decimals are written as numbers.

msgspec does the parsing and the writing (in C); the few rules it has no switch for are checked here,
on the parsed value, in one pass: bounded nesting, bounded integers, no duplicate keys, and text
PostgreSQL can store. The answer's values are brought to the wire form first, in one pass too: money as
exact text with at least two places, times in ISO 8601, and a float refused (money is never a float).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import msgspec

from shared.money import money_text

MAX_NESTING_DEPTH = 32
# Digits an integer may have: a longer one is no amount, count or id of ours, and int() of 5,000 digits is slow.
MAX_INTEGER_DIGITS = 40
# A JSON string, escapes included: taken out of the text before its colons are counted as keys.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Escapes that can make text PostgreSQL cannot store: NUL, and surrogates (which may come unpaired).
_RISKY_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_INTEGER_LIMIT = 10**MAX_INTEGER_DIGITS
_DECODER = msgspec.json.Decoder(float_hook=Decimal)
_ENCODER = msgspec.json.Encoder()
_PLAIN = frozenset({str, int, bool, type(None), UUID})  # written by msgspec as they are


class JsonInputError(ValueError):
    """The text is not acceptable JSON for this API."""


def loads(text: str | bytes) -> Any:
    """Strict parse: Decimal numbers, no NaN/Infinity, no duplicate keys, bounded nesting."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    try:
        value = _DECODER.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as error:
        raise JsonInputError(f"malformed JSON: {error}") from None
    shape = _Shape()
    shape.visit(value, 1)
    has_unicode_escape = b"\\u" in raw
    if _repeats_a_key(raw, shape, has_unicode_escape):
        raise JsonInputError("duplicate key")
    if has_unicode_escape and _RISKY_ESCAPE.search(raw):
        _check_text(value)
    return value


class _Shape:
    """What one pass over a parsed value counts: its keys, the colons inside its text; and what it refuses:
    nesting past MAX_NESTING_DEPTH, an integer of more than MAX_INTEGER_DIGITS digits."""

    __slots__ = ("keys", "text_colons")

    def __init__(self) -> None:
        self.keys = 0
        self.text_colons = 0

    def visit(self, value: Any, level: int) -> None:
        kind = type(value)
        if kind is str:
            self.text_colons += value.count(":")
        elif kind is int:
            if not -_INTEGER_LIMIT < value < _INTEGER_LIMIT:
                raise JsonInputError("number too large")
        elif kind is dict or kind is list:
            if level > MAX_NESTING_DEPTH:
                raise JsonInputError("JSON nested too deeply")
            if kind is dict:
                self.keys += len(value)
                for key in value:
                    self.text_colons += key.count(":")
                items = value.values()
            else:
                items = value
            for item in items:
                self.visit(item, level + 1)


def _repeats_a_key(raw: bytes, shape: _Shape, has_unicode_escape: bool) -> bool:
    """Whether an object named a key twice (the parser keeps the last). Outside strings, JSON's colons are
    exactly its keys; so the text's colons less those inside its strings, against the keys parsed."""
    colons = raw.count(b":")
    if colons == shape.keys:
        return False  # every colon is a key's: none inside text, none repeated
    if not has_unicode_escape:  # the strings are as written (only \u can write a colon): count from the values
        return colons - shape.text_colons != shape.keys
    # On text that parsed, every quote starts a whole string, so this scan is linear.
    return _JSON_STRING.sub(b'""', raw).count(b":") != shape.keys


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


def dumps(value: Any) -> str:
    """Serialise, writing Decimals as exact JSON numbers (never through float)."""
    return dumps_bytes(value).decode("utf-8")


def dumps_bytes(value: Any) -> bytes:
    """dumps() as UTF-8 bytes, for a body on the wire (no decoding and encoding again)."""
    return _ENCODER.encode(_wire(value))


def _wire(value: Any) -> Any:
    """The value with every leaf in its wire form; msgspec writes the rest (strings, ints, UUIDs) as is."""
    kind = type(value)
    if kind is dict:
        return {
            key if type(key) is str else str(key): item if type(item) in _PLAIN else _wire(item)
            for key, item in value.items()
        }
    if kind is list or kind is tuple:
        return [item if type(item) in _PLAIN else _wire(item) for item in value]
    if kind in _PLAIN:
        return value
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a JSON number")
        return msgspec.Raw(money_text(value).encode())
    if isinstance(value, float):
        # Never produced by our code; refuse rather than write an inexact number.
        raise TypeError(f"float {value!r} in a JSON answer: use Decimal")
    if isinstance(value, Enum):
        return _wire(value.value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (str, int, UUID)):  # subclasses of the plain types (an IntEnum is an Enum above)
        return value
    if isinstance(value, dict | list | tuple):
        return _wire(dict(value) if isinstance(value, dict) else list(value))
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
