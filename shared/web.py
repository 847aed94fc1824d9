"""aiohttp glue every service shares: the error middleware, JSON in/out, path and query parsing, health routes."""
from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog
from aiohttp import web
from shared import jsonio
from shared.database import database_unavailable
from shared.errors import (ApiError, NotFoundError, PayloadTooLargeError, ServiceUnavailableError,
                           ValidationError)

log = structlog.get_logger()

MAX_BODY_BYTES = 64 * 1024
MAX_PAGE_LIMIT = 500
DEFAULT_PAGE_LIMIT = 50
QUERY_INTEGER = re.compile(r"-?[0-9]{1,18}", re.ASCII)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HealthCheck = Callable[[web.Application], Awaitable[None]]
HEALTH_CHECK_KEY = web.AppKey("health_check", object)
SERVICE_NAME_KEY = web.AppKey("service_name", str)


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(text=jsonio.dumps(body), status=status, content_type="application/json")


def ok(data: Any, *, status: int = 200, message: str | None = None) -> web.Response:
    body: dict[str, Any] = {"success": True, "data": data}
    if message is not None:
        body["message"] = message
    return json_response(body, status)


def error_response(error: ApiError) -> web.Response:
    response = json_response(error.to_body(), error.status)
    response.headers.update(error.headers)
    return response


def _unexpected_error_response(request: web.Request, error: Exception) -> web.Response:
    if database_unavailable(error):
        log.error("database_unavailable", method=request.method, path=request.path,
                  details={"error": type(error).__name__})
        return error_response(ServiceUnavailableError("database unavailable, try again"))
    log.exception("unhandled_error", method=request.method, path=request.path)
    return json_response({"success": False, "error": {"code": "INTERNAL_ERROR", "message": "internal error"}}, 500)


_HTTP_CODES = {400: "VALIDATION_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
               405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place errors become HTTP: typed ApiErrors keep their status; anything else is a logged 500."""
    request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
    except ApiError as error:
        response = error_response(error)
    except web.HTTPException as http_error:
        if http_error.status < 400:
            raise
        code = _HTTP_CODES.get(http_error.status, "HTTP_ERROR")
        response = json_response({"success": False, "error": {"code": code, "message": http_error.reason}},
                                 http_error.status)
    except Exception as error:
        response = _unexpected_error_response(request, error)
    response.headers["X-Request-ID"] = request_id
    return response


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, strictly parsed (Decimal numbers), or a 400/413."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLargeError(f"body larger than {MAX_BODY_BYTES} bytes") from None
    if not raw.strip():
        raise ValidationError("request body must be a JSON object")
    try:
        body = jsonio.loads(raw)
    except jsonio.JsonInputError as error:
        raise ValidationError(str(error)) from None
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    return body


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


def query_int(request: web.Request, name: str, *, default: int, minimum: int = 0,
              maximum: int = MAX_PAGE_LIMIT) -> int:
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


def add_health_routes(app: web.Application, service_name: str, check: HealthCheck) -> None:
    """GET /health (database checked, 503 when down), /health/ping (process alive), /ready."""
    app[SERVICE_NAME_KEY] = service_name
    app[HEALTH_CHECK_KEY] = check
    app.router.add_get("/health", _health)
    app.router.add_get("/health/ping", _ping)
    app.router.add_get("/ready", _health)


async def _ping(request: web.Request) -> web.Response:
    return ok({"status": "ok", "service": request.app[SERVICE_NAME_KEY]})


async def _health(request: web.Request) -> web.Response:
    started = time.perf_counter()
    try:
        await request.app[HEALTH_CHECK_KEY](request.app)
    except Exception as error:  # any failure of the check means "not healthy", with its reason
        raise ServiceUnavailableError("database unavailable", details={
            "service": request.app[SERVICE_NAME_KEY], "database": "down", "reason": type(error).__name__,
        }) from None
    latency_ms = Decimal(f"{(time.perf_counter() - started) * 1000:.1f}")
    return ok({"status": "healthy", "service": request.app[SERVICE_NAME_KEY], "database": "up",
               "database_latency_ms": latency_ms})


def not_found_unless(value: Any, message: str) -> Any:
    if value is None:
        raise NotFoundError(message)
    return value
