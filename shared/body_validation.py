"""Request bodies validated against the service's OpenAPI document, compiled once, before any handler parses them.

What a client reads in /openapi.json is what the server checks. Each route's body schema is compiled
once into a jsonschema-rs validator (Rust), which checks every body. Only a body it refuses goes to the
jsonschema (Python) validator of the same schema, which names the failing field for the 400: the cold path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import jsonschema
import jsonschema_rs
from aiohttp import web

from shared import jsonio
from shared.errors import ValidationError
from shared.openapi import JSON
from shared.params import MAX_BODY_BYTES, read_json_object

BODY_VALIDATORS_KEY = web.AppKey("openapi_body_validators", dict)
VALIDATED_BODY_KEY = web.RequestKey("validated_body", dict)
# A body the fast validator refuses but the describing one passes (none is known: tests/unit/test_body_validation.py
# checks they agree): still a 400, named as well as the fast validator can.
UNDESCRIBED_MESSAGE = "body does not match the schema"


def _is_number(checker: Any, instance: Any) -> bool:
    """JSON numbers arrive as Decimal or int (shared/jsonio.py); a bool is not a number."""
    return isinstance(instance, (int, Decimal)) and not isinstance(instance, bool)


def _bounded_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Any:
    """`pattern`, run only on text no longer than the schema's maxLength (which reports longer text itself).

    jsonschema checks every keyword, so without this a 64 KiB value meets the regex even though it is
    already too long; every pattern here must have a maxLength (tests/unit/test_openapi_contract.py)."""
    if not validator.is_type(instance, "string") or len(instance) > schema.get("maxLength", 0):
        return
    if re.search(_ecma_end(pattern), instance) is None:
        yield jsonschema.ValidationError("does not match the pattern")


@functools.cache
def _ecma_end(pattern: str) -> str:
    """A closing `$` as JSON Schema (ECMA 262) and jsonschema-rs read it: the end of the text. Python's `$`
    also matches before a final newline, so "5" and a newline would pass here and fail in the fast validator."""
    return pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern


_TYPE_CHECKER = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("number", _is_number)
BodyValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, type_checker=_TYPE_CHECKER, validators={"pattern": _bounded_pattern}
)
_FORMATS = jsonschema.FormatChecker(formats=("uuid",))


class RouteBodyValidator:
    """One route's body schema, compiled twice: to check fast, and to say what is wrong when it fails."""

    def __init__(self, schema: dict[str, Any]) -> None:
        BodyValidator.check_schema(schema)
        # RegexOptions: Rust's linear-time regex engine, so no pattern can backtrack on a long value.
        self._check = jsonschema_rs.validator_for(
            schema, validate_formats=True, pattern_options=jsonschema_rs.RegexOptions()
        )
        self._describe = BodyValidator(schema, format_checker=_FORMATS)

    def validate(self, body: dict[str, Any]) -> None:
        """Return when the body is valid, else raise the ValidationError naming its first problem."""
        try:
            if self._check.is_valid(body):
                return
            first_error = next(iter(self._check.iter_errors(body)), None)
        except (ValueError, TypeError, OverflowError):  # a value it cannot take in (none known): refused
            first_error = None
        error = jsonschema.exceptions.best_match(self._describe.iter_errors(body))
        if error is not None:
            field, message = describe(error)
        else:
            field, message = _described_by_rust(first_error)
        # details.field is the leaf name, as the handlers' own checks give it ("email", not "contact_info.email").
        raise ValidationError(message, details={"field": field.rpartition(".")[2]})


def body_validators(openapi_document: dict[str, Any]) -> dict[tuple[str, str], RouteBodyValidator]:
    """(METHOD, path template) -> a validator for its JSON request body, compiled once."""
    validators = {}
    for path, item in openapi_document["paths"].items():
        for method, spec in item.items():
            schema = spec.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema")
            if schema is not None:
                validators[(method.upper(), path)] = RouteBodyValidator(schema)
    return validators


async def validated_body(request: web.Request, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The JSON body, checked against the document's requestBody schema for this route before any parsing.

    It is kept on the request: whatever reads the body again (the audit log) reads it from there."""
    body = await read_json_object(request, max_bytes=max_bytes)
    route_path = request.match_info.route.resource.canonical if request.match_info.route.resource else ""
    validator = request.app[BODY_VALIDATORS_KEY].get((request.method, route_path))
    assert validator is not None, f"no requestBody schema for {request.method} {route_path}"
    validator.validate(body)
    request[VALIDATED_BODY_KEY] = body
    return body


def _described_by_rust(error: jsonschema_rs.ValidationError | None) -> tuple[str, str]:
    if error is None:
        return "body", UNDESCRIBED_MESSAGE
    field = ".".join(str(part) for part in error.instance_path) or "body"
    return field, f"{field} fails {error.kind.name}"


def describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    """The failing field and a short message that never echoes the value (it may be a password, or 64 KiB)."""
    path = [str(part) for part in error.absolute_path]
    # iter_errors sets both on every error it yields (only a hand-made error leaves them Unset); JSON, so Any.
    expected: Any = error.validator_value
    instance: Any = error.instance
    rule = error.validator
    if rule == "required":
        missing = next(name for name in expected if name not in instance)
        field = ".".join([*path, missing])
        return field, f"{field} is required"
    field = ".".join(path) or "body"
    if rule == "additionalProperties":
        assert isinstance(error.schema, Mapping), "additionalProperties is a keyword of an object schema"
        unknown = sorted(set(instance) - set(error.schema.get("properties", {})))
        return field, f"unknown fields: {', '.join(unknown)}"[:200]
    if rule in (
        "type",
        "enum",
        "const",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "pattern",
    ):
        return field, f"{field} fails {rule} {jsonio.dumps(expected)}"
    return field, f"{field} fails {rule}"
