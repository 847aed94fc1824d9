"""OpenAPI 3.1 building blocks: parameters, operations, and the document every service assembles.

Each service writes its document as Python data (its api_schema.py) from the blocks here and the schemas of
shared/schemas.py; shared/api_docs.py
serves it and shared/body_validation.py checks request bodies against it.
"""

from __future__ import annotations

from typing import Any

from shared.params import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT
from shared.schemas import ERROR_ENVELOPE, TIMESTAMP, UUID_SCHEMA, array_of, obj, success

OPENAPI_VERSION = "3.1.0"
OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
JSON = "application/json"
TEXT = "text/plain"
# aiohttp's HTTP parser answers a request line or headers over 8190 bytes itself, before any route or middleware.
PARSER_REJECTION = "a request line or header too large for the HTTP parser: plain text, not the envelope"


BEARER_SCHEME = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
ERROR_DESCRIPTIONS = {
    400: "invalid input (VALIDATION_ERROR)",
    401: "missing or invalid token",
    403: "role or owner not allowed",
    404: "not found",
    409: "conflict",
    413: "body too large",
    422: "idempotency key reused",
    429: "too many requests",
    503: "database or peer unavailable, nothing decided (Retry-After)",
    504: "outcome unknown (OUTCOME_UNKNOWN): ask about details.transaction_id, do not resend",
}
AUTHED_ERRORS = (400, 401, 403, 404, 503)
# A change to something that exists (a balance, a customer, a lock): it may also conflict with its state.
CHANGE_ERRORS = (400, 401, 403, 404, 409)
BODY_ERRORS = (413,)


def path_uuid_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": UUID_SCHEMA}


def query_int_parameter(name: str, *, minimum: int, maximum: int, default: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": minimum, "maximum": maximum, "default": default},
    }


PAGE_PARAMETERS = [
    query_int_parameter("limit", minimum=1, maximum=MAX_PAGE_LIMIT, default=DEFAULT_PAGE_LIMIT),
    query_int_parameter("offset", minimum=0, maximum=10_000_000, default=0),
]


def operation(
    summary: str,
    data: dict[str, Any],
    *,
    status: int = 200,
    body: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = AUTHED_ERRORS,
    public: bool = False,
    tags: tuple[str, ...] = (),
) -> dict[str, Any]:
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
    return {
        "summary": summary,
        "security": [],
        "tags": ["operations"],
        "responses": {"200": {"description": summary, "content": {content_type: {"schema": {"type": "string"}}}}},
    }


# /health: the original system's fields (status, service, timestamp, database.connected, uptime in ms) and ours.
_PROBE = {"service": {"type": "string"}, "timestamp": TIMESTAMP, "uptime": {"type": "integer", "minimum": 0}}
HEALTH = obj(
    {
        "status": {"const": "healthy"},
        **_PROBE,
        "database": obj({"connected": {"const": True}, "latency_ms": {"type": "number"}}),
        "database_latency_ms": {"type": "number"},
    }
)
UNHEALTHY = {
    **ERROR_ENVELOPE,
    "properties": {
        **ERROR_ENVELOPE["properties"],
        "data": obj(
            {
                "status": {"const": "unhealthy"},
                **_PROBE,
                "database": obj({"connected": {"const": False}, "error": {"type": "string"}}),
            }
        ),
    },
}


def common_paths() -> dict[str, Any]:
    """The routes every service serves: health, metrics, and this document."""
    health = operation(
        "health, with a database check (503 when it is down)", HEALTH, errors=(), public=True, tags=("operations",)
    )
    health["responses"]["503"]["content"] = {JSON: {"schema": UNHEALTHY}}
    ping = operation(
        "process alive",
        obj({"status": {"const": "ok"}, "service": {"type": "string"}}),
        errors=(),
        public=True,
        tags=("operations",),
    )
    openapi = {
        "summary": "this OpenAPI document",
        "security": [],
        "tags": ["operations"],
        "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}}},
    }
    return {
        "/health": {"get": health},
        "/health/ping": {"get": ping},
        "/ready": {"get": health},
        "/metrics": {"get": plain_operation("Prometheus metrics", TEXT)},
        OPENAPI_PATH: {"get": openapi},
        DOCS_PATH: {"get": plain_operation("this API as HTML", "text/html")},
    }


AUDIT_ENTRY = obj(
    {
        "audit_id": {"type": "integer"},
        "occurred_at": TIMESTAMP,
        "actor": {"type": "string"},
        "role": {"enum": ["teller", "admin"]},
        "action": {"type": "string"},
        "method": {"type": "string"},
        "path": {"type": "string"},
        "status": {"type": "integer"},
        "address": {"type": "string"},
        "details": {"type": "object"},
    }
)


def audit_paths() -> dict[str, Any]:
    """GET /audit, which every service serves (shared/audit.py)."""
    return {
        "/audit": {
            "get": operation(
                "staff actions on money and customers, newest first (admin)",
                array_of(AUDIT_ENTRY),
                parameters=PAGE_PARAMETERS,
                tags=("audit",),
            )
        }
    }


def document(title: str, description: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": "1.0.0", "description": description},
        "paths": {**paths, **audit_paths(), **common_paths()},
        "components": {"securitySchemes": BEARER_SCHEME},
    }
