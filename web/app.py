"""create_app(settings): the static console, its config, and the pass-through to the services. No I/O at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import aiohttp
from aiohttp import web

from shared import jsonio
from web import proxy
from web.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"
SETTINGS_KEY = web.AppKey("console_settings", Settings)
# Which service owns which API path (the same split as the Kubernetes Ingress).
CUSTOMER_PREFIXES = ("/auth", "/customers")
ACCOUNTS_PREFIXES = ("/accounts", "/2pc", "/demo")
TRANSACTIONS_PREFIXES = ("/transfers", "/transactions")
# The pages' own scripts and styles only: nothing from another origin, no inline script.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=proxy.MAX_BODY_BYTES)
    app[SETTINGS_KEY] = settings
    app.cleanup_ctx.append(_proxy_session)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/", _index)
    app.router.add_get("/console/config.json", _config)
    for path in ("/health/ping", "/ready", "/health"):  # the console keeps no state: alive is ready
        app.router.add_get(path, _ping)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    app.router.add_get("/ws", partial(_forward_socket, upstream=settings.transactions_service_url))
    for prefixes, upstream in (
        (CUSTOMER_PREFIXES, settings.customer_service_url),
        (ACCOUNTS_PREFIXES, settings.accounts_service_url),
        (TRANSACTIONS_PREFIXES, settings.transactions_service_url),
    ):
        for prefix in prefixes:
            app.router.add_route("*", prefix + "{tail:(/.*)?}", partial(_forward, upstream=upstream))
    return app


async def _forward(request: web.Request, *, upstream: str) -> web.Response:
    return await proxy.forward(request, upstream)


async def _forward_socket(request: web.Request, *, upstream: str) -> web.StreamResponse:
    return await proxy.forward_socket(request, upstream)


async def _proxy_session(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=app[SETTINGS_KEY].proxy_timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[proxy.SESSION_KEY] = session
        yield


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


async def _ping(request: web.Request) -> web.Response:
    return web.Response(content_type="application/json", text='{"success": true, "data": {"status": "ok"}}')


async def _config(request: web.Request) -> web.Response:
    return web.Response(
        content_type="application/json", text=jsonio.dumps({"demo": request.app[SETTINGS_KEY].demo_endpoints})
    )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
