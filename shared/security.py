"""Browser-facing hardening every service shares: security headers on every answer, and CORS by setting.

Headers are added when a response is prepared (not in a middleware's return path), so the answers the
error middleware writes for a raised error, a 404 route or a 405 method carry them too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# An API answer is data, never a page: nothing may be loaded, framed, sniffed or cached.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
# A human page (the API docs: no scripts, one inline style sheet) may style itself, and load nothing else.
HTML_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
)
CORS_ALLOWED_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
CORS_ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
CORS_EXPOSED_HEADERS = "X-Request-ID, Retry-After"
CORS_MAX_AGE_S = 600
CORS_ORIGINS_KEY = web.AppKey("cors_allowed_origins", frozenset)


def install_security(app: web.Application, cors_allowed_origins: Iterable[str]) -> None:
    """Security headers on every answer; CORS headers, and preflight answers, for the allowed origins only."""
    allowed = frozenset(cors_allowed_origins)
    assert "*" not in allowed, "CORS origins are listed, never a wildcard"
    app[CORS_ORIGINS_KEY] = allowed
    app.on_response_prepare.append(_add_headers)


def _allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    return origin if origin is not None and origin in request.app[CORS_ORIGINS_KEY] else None


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type == "text/html":
        response.headers["Content-Security-Policy"] = HTML_CONTENT_SECURITY_POLICY
    if CORS_ORIGINS_KEY in request.app and (origin := _allowed_origin(request)) is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
        response.headers["Vary"] = "Origin"


@web.middleware
async def cors_preflight_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A preflight from an allowed origin is answered here (204); any other OPTIONS goes on to the router."""
    is_preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    if not is_preflight or CORS_ORIGINS_KEY not in request.app or _allowed_origin(request) is None:
        return await handler(request)
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = CORS_ALLOWED_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_S)
    return response
