"""Reading a request: the JSON body (strict, bounded), path ids, required fields, query integers and pages."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from aiohttp import web

from shared import jsonio
from shared.errors import PayloadTooLargeError, ValidationError

MAX_BODY_BYTES = 64 * 1024
MAX_PAGE_LIMIT = 500
DEFAULT_PAGE_LIMIT = 50
QUERY_INTEGER = re.compile(r"-?[0-9]{1,18}", re.ASCII)


async def read_json_object(request: web.Request, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request body as a JSON object, strictly parsed (Decimal numbers), or a 400/413.

    max_bytes above the app's client_max_size (MAX_BODY_BYTES) is for a route that carries many items
    (a participant's batch); the body is then read from the stream, bounded by it."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLargeError(f"body larger than {max_bytes} bytes")
    if max_bytes > MAX_BODY_BYTES:
        raw = await _read_at_most(request, max_bytes)
    else:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLargeError(f"body larger than {max_bytes} bytes") from None
    if not raw.strip():
        raise ValidationError("request body must be a JSON object")
    try:
        body = jsonio.loads(raw)
    except jsonio.JsonInputError as error:
        raise ValidationError(str(error)) from None
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    return body


async def _read_at_most(request: web.Request, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(MAX_BODY_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(f"body larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_uuid(value: Any, *, field: str) -> UUID:
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a UUID string", details={"field": field})
    try:
        return UUID(value)
    except ValueError:
        raise ValidationError(f"{field} must be a valid UUID", details={"field": field}) from None


def path_uuid(request: web.Request, name: str) -> UUID:
    return parse_uuid(request.match_info[name], field=name)


def require_field(body: dict[str, Any], name: str) -> Any:
    if name not in body or body[name] is None:
        raise ValidationError(f"{name} is required", details={"field": name})
    return body[name]


def require_text(body: dict[str, Any], name: str, *, max_length: int = 200) -> str:
    value = require_field(body, name)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string", details={"field": name})
    if len(value) > max_length:
        raise ValidationError(f"{name} must be at most {max_length} characters", details={"field": name})
    return value.strip()


def query_int(request: web.Request, name: str, *, default: int, minimum: int = 0, maximum: int = MAX_PAGE_LIMIT) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # Plain ASCII digits only: int() would also take "", " 5", "1_000" and other scripts' digits.
    if not QUERY_INTEGER.fullmatch(raw):
        raise ValidationError(f"{name} must be an integer", details={"field": name})
    value = int(raw)
    if not minimum <= value <= maximum:
        raise ValidationError(f"{name} must be between {minimum} and {maximum}", details={"field": name})
    return value


def page_params(request: web.Request) -> tuple[int, int]:
    limit = query_int(request, "limit", default=DEFAULT_PAGE_LIMIT, minimum=1, maximum=MAX_PAGE_LIMIT)
    offset = query_int(request, "offset", default=0, minimum=0, maximum=10_000_000)
    return limit, offset
