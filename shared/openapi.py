"""OpenAPI 3.1 building blocks, GET /openapi.json and /docs, and request bodies validated against the document.

Each service writes its document as Python data (its api_schema.py) from the blocks here; the same
document is served and used to validate request bodies, so what a client reads is what the server checks.
"""
from __future__ import annotations

import html
import re
from decimal import Decimal
from typing import Any

import jsonschema
from aiohttp import web

from shared import jsonio
from shared.errors import ValidationError
from shared.money import DEFAULT_MAX_AMOUNT
from shared.web import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, json_response, read_json_object

OPENAPI_VERSION = "3.1.0"
OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
OPENAPI_KEY = web.AppKey("openapi_document", dict)
BODY_VALIDATORS_KEY = web.AppKey("openapi_body_validators", dict)
JSON = "application/json"
TEXT = "text/plain"
# aiohttp's HTTP parser answers a request line or headers over 8190 bytes itself, before any route or middleware.
PARSER_REJECTION = "a request line or header too large for the HTTP parser: plain text, not the envelope"

# ---- schemas -------------------------------------------------------------------------------------------

UUID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid"}
NULLABLE_UUID: dict[str, Any] = {"type": ["string", "null"], "format": "uuid"}
TIMESTAMP: dict[str, Any] = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
# Answers write money as exact JSON numbers; requests may also send a numeric string (shared/money.py).
MONEY: dict[str, Any] = {"type": "number"}
NULLABLE_MONEY: dict[str, Any] = {"type": ["number", "null"]}
MAX_AMOUNT = int(DEFAULT_MAX_AMOUNT)
MONEY_TEXT_PATTERN = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"


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


def obj(properties: dict[str, Any], *, required: tuple[str, ...] | None = None, closed: bool = False
        ) -> dict[str, Any]:
    """An object schema; by default every property is required (answers always carry all their keys)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": list(properties if required is None else required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def array_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


ERROR_ENVELOPE = obj({
    "success": {"const": False},
    "error": obj({"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
                 required=("code", "message")),
}, closed=True)


def success(data: dict[str, Any]) -> dict[str, Any]:
    return obj({"success": {"const": True}, "data": data, "message": {"type": "string"}},
               required=("success", "data"), closed=True)


# ---- parameters and operations -------------------------------------------------------------------------

BEARER_SCHEME = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
ERROR_DESCRIPTIONS = {400: "invalid input (VALIDATION_ERROR)", 401: "missing or invalid token",
                      403: "role or owner not allowed", 404: "not found", 409: "conflict",
                      413: "body too large", 422: "idempotency key reused", 429: "too many requests",
                      503: "database or peer unavailable"}
AUTHED_ERRORS = (400, 401, 403, 404, 503)
BODY_ERRORS = (413,)


def path_uuid_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": UUID_SCHEMA}


def query_int_parameter(name: str, *, minimum: int, maximum: int, default: int) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False,
            "schema": {"type": "integer", "minimum": minimum, "maximum": maximum, "default": default}}


PAGE_PARAMETERS = [query_int_parameter("limit", minimum=1, maximum=MAX_PAGE_LIMIT, default=DEFAULT_PAGE_LIMIT),
                   query_int_parameter("offset", minimum=0, maximum=10_000_000, default=0)]


def operation(summary: str, data: dict[str, Any], *, status: int = 200, body: dict[str, Any] | None = None,
              parameters: list[dict[str, Any]] | None = None, errors: tuple[int, ...] = AUTHED_ERRORS,
              public: bool = False, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    """One operation answering the success envelope around `data`, or the error envelope for `errors`."""
    responses: dict[str, Any] = {str(status): {"description": "success", "content": {JSON: {"schema": success(data)}}}}
    all_errors = sorted(set(errors) | (set(BODY_ERRORS) if body is not None else set()) | {503})
    for code in all_errors:
        content: dict[str, Any] = {JSON: {"schema": ERROR_ENVELOPE}}
        description = ERROR_DESCRIPTIONS.get(code, "error")
        if code == 400:
            content[TEXT] = {"schema": {"type": "string"}}
            description = f"{description}; {TEXT}: {PARSER_REJECTION}"
        responses[str(code)] = {"description": description, "content": content}
    result: dict[str, Any] = {"summary": summary, "responses": responses}
    if tags:
        result["tags"] = list(tags)
    if parameters:
        result["parameters"] = parameters
    if body is not None:
        result["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    result["security"] = [] if public else [{"bearer": []}]
    return result


def plain_operation(summary: str, content_type: str) -> dict[str, Any]:
    return {"summary": summary, "security": [], "tags": ["operations"],
            "responses": {"200": {"description": summary, "content": {content_type: {"schema": {"type": "string"}}}}}}


HEALTH = obj({"status": {"const": "healthy"}, "service": {"type": "string"}, "database": {"const": "up"},
              "database_latency_ms": {"type": "number"}})


def common_paths() -> dict[str, Any]:
    """The routes every service serves: health, metrics, and this document."""
    health = operation("health, with a database check (503 when it is down)", HEALTH, errors=(), public=True,
                       tags=("operations",))
    ping = operation("process alive", obj({"status": {"const": "ok"}, "service": {"type": "string"}}),
                     errors=(), public=True, tags=("operations",))
    openapi = {"summary": "this OpenAPI document", "security": [], "tags": ["operations"],
               "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}}}}
    return {"/health": {"get": health}, "/health/ping": {"get": ping}, "/ready": {"get": health},
            "/metrics": {"get": plain_operation("Prometheus metrics", TEXT)},
            OPENAPI_PATH: {"get": openapi}, DOCS_PATH: {"get": plain_operation("this API as HTML", "text/html")}}


AUDIT_ENTRY = obj({"audit_id": {"type": "integer"}, "occurred_at": TIMESTAMP, "actor": {"type": "string"},
                   "role": {"enum": ["teller", "admin"]}, "action": {"type": "string"}, "method": {"type": "string"},
                   "path": {"type": "string"}, "status": {"type": "integer"}, "address": {"type": "string"},
                   "details": {"type": "object"}})


def audit_paths() -> dict[str, Any]:
    """GET /audit, which every service serves (shared/audit.py)."""
    return {"/audit": {"get": operation("staff actions on money and customers, newest first (admin)",
                                        array_of(AUDIT_ENTRY), parameters=PAGE_PARAMETERS, tags=("audit",))}}


def document(title: str, description: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": OPENAPI_VERSION,
            "info": {"title": title, "version": "1.0.0", "description": description},
            "paths": {**paths, **audit_paths(), **common_paths()},
            "components": {"securitySchemes": BEARER_SCHEME}}


# ---- serving and validating ----------------------------------------------------------------------------

def _is_number(checker: Any, instance: Any) -> bool:
    """JSON numbers arrive as Decimal or int (shared/jsonio.py); a bool is not a number."""
    return isinstance(instance, (int, Decimal)) and not isinstance(instance, bool)


def _bounded_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Any:
    """`pattern`, run only on text no longer than the schema's maxLength (which reports longer text itself).

    jsonschema checks every keyword, so without this a 64 KiB value meets the regex even though it is
    already too long; every pattern here must have a maxLength (tests/unit/test_openapi_contract.py)."""
    if not validator.is_type(instance, "string") or len(instance) > schema.get("maxLength", 0):
        return
    if re.search(pattern, instance) is None:
        yield jsonschema.ValidationError("does not match the pattern")


_TYPE_CHECKER = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("number", _is_number)
BodyValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPE_CHECKER,
                                             validators={"pattern": _bounded_pattern})
_FORMATS = jsonschema.FormatChecker(formats=("uuid",))


def body_validators(openapi_document: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """(METHOD, path template) -> a validator for its JSON request body, compiled once."""
    validators = {}
    for path, item in openapi_document["paths"].items():
        for method, spec in item.items():
            schema = spec.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema")
            if schema is not None:
                BodyValidator.check_schema(schema)
                validators[(method.upper(), path)] = BodyValidator(schema, format_checker=_FORMATS)
    return validators


def install_openapi(app: web.Application, openapi_document: dict[str, Any]) -> None:
    """Serve the document at GET /openapi.json and an HTML page at GET /docs; keep its body validators."""
    app[OPENAPI_KEY] = openapi_document
    app[BODY_VALIDATORS_KEY] = body_validators(openapi_document)
    app.router.add_get(OPENAPI_PATH, _serve_document)
    app.router.add_get(DOCS_PATH, _serve_docs)


async def validated_body(request: web.Request) -> dict[str, Any]:
    """The JSON body, checked against the document's requestBody schema for this route before any parsing."""
    body = await read_json_object(request)
    route_path = request.match_info.route.resource.canonical if request.match_info.route.resource else ""
    validator = request.app[BODY_VALIDATORS_KEY].get((request.method, route_path))
    assert validator is not None, f"no requestBody schema for {request.method} {route_path}"
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is not None:
        field, message = describe(error)
        # details.field is the leaf name, as the handlers' own checks give it ("email", not "contact_info.email").
        raise ValidationError(message, details={"field": field.rpartition(".")[2]})
    return body


def describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    """The failing field and a short message that never echoes the value (it may be a password, or 64 KiB)."""
    path = [str(part) for part in error.absolute_path]
    rule, expected = error.validator, error.validator_value
    if rule == "required":
        missing = next(name for name in expected if name not in error.instance)
        field = ".".join([*path, missing])
        return field, f"{field} is required"
    field = ".".join(path) or "body"
    if rule == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return field, f"unknown fields: {', '.join(unknown)}"[:200]
    if rule in ("type", "enum", "const", "format", "minimum", "maximum", "exclusiveMinimum", "minLength",
                "maxLength", "minItems", "maxItems", "pattern"):
        return field, f"{field} fails {rule} {jsonio.dumps(expected)}"
    return field, f"{field} fails {rule}"


async def _serve_document(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI_KEY])


async def _serve_docs(request: web.Request) -> web.Response:
    return web.Response(text=docs_html(request.app[OPENAPI_KEY]), content_type="text/html")


def docs_html(openapi_document: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no CDN): one row per operation, its schemas as JSON."""
    info = openapi_document["info"]
    rows = []
    for path, item in openapi_document["paths"].items():
        for method, spec in item.items():
            body = spec.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema")
            auth = "bearer" if spec.get("security") else "none"
            responses = ", ".join(spec["responses"])
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(spec.get('summary', ''))}</td><td>{auth}</td><td>{responses}</td>"
                        f"<td>{_schema_block(body)}</td></tr>")
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(info['title'])}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px;"
            "vertical-align:top}table{border-collapse:collapse}pre{margin:0;font-size:12px}</style></head><body>"
            f"<h1>{html.escape(info['title'])} {html.escape(info['version'])}</h1>"
            f"<p>{html.escape(info.get('description', ''))} The machine-readable document is "
            f"<a href='{OPENAPI_PATH}'>{OPENAPI_PATH}</a>.</p>"
            "<table><tr><th>method</th><th>path</th><th>summary</th><th>auth</th><th>statuses</th>"
            f"<th>request body</th></tr>{''.join(rows)}</table></body></html>")


def _schema_block(schema: dict[str, Any] | None) -> str:
    return "" if schema is None else f"<pre>{html.escape(jsonio.dumps(schema))}</pre>"

