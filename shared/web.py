"""The HTTP edge every service shares: answers in the envelope, and the one middleware where errors become HTTP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from shared import jsonio
from shared.database import database_unavailable
from shared.errors import ApiError, NotFoundError, ServiceUnavailableError
from shared.log import REQUEST_ID_VAR

log = structlog.get_logger()

# A caller's X-Request-ID is kept when it is short and plain (it goes into every log line); else we make one.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=jsonio.dumps_bytes(body), status=status, content_type="application/json", charset="utf-8")


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
        log.error(
            "database_unavailable", method=request.method, path=request.path, details={"error": type(error).__name__}
        )
        return error_response(ServiceUnavailableError("database unavailable, try again"))
    log.exception("unhandled_error", method=request.method, path=request.path)
    return json_response({"success": False, "error": {"code": "INTERNAL_ERROR", "message": "internal error"}}, 500)


_HTTP_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place errors become HTTP: typed ApiErrors keep their status; anything else is a logged 500."""
    request_id = request.headers.get("X-Request-ID", "")
    if not REQUEST_ID.fullmatch(request_id):
        request_id = uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    REQUEST_ID_VAR.set(request_id)
    try:
        response = await handler(request)
    except ApiError as error:
        response = error_response(error)
    except web.HTTPException as http_error:
        if http_error.status < 400:
            raise
        code = _HTTP_CODES.get(http_error.status, "HTTP_ERROR")
        response = json_response(
            {"success": False, "error": {"code": code, "message": http_error.reason}}, http_error.status
        )
    except Exception as error:
        response = _unexpected_error_response(request, error)
    response.headers["X-Request-ID"] = request_id
    return response


def not_found_unless(value: Any, message: str) -> Any:
    if value is None:
        raise NotFoundError(message)
    return value
