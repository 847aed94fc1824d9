"""The API paths and the push socket, passed through to the service that owns them, bounded and unchanged.

Bodies go through as bytes, so amounts stay exactly as the services wrote them; only the headers an API
call needs are forwarded, and the answer's status, body and content type come back as they were.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import WSMsgType, web

from shared import jsonio

MAX_BODY_BYTES = 64 * 1024  # the services' own request limit
MAX_ANSWER_BYTES = 4 * 1024 * 1024
FORWARDED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "Accept")
PUSH_PROTOCOL = "banking.v1"
PUSH_HEARTBEAT_S = 20.0
CLOSE_UPSTREAM_UNAVAILABLE = 1013
SESSION_KEY = web.AppKey("proxy_session", aiohttp.ClientSession)


def unavailable(message: str) -> web.Response:
    return web.Response(
        status=503,
        content_type="application/json",
        text=jsonio.dumps({"success": False, "error": {"code": "SERVICE_UNAVAILABLE", "message": message}}),
    )


async def forward(request: web.Request, upstream: str) -> web.Response:
    body = await request.read() if request.body_exists else None
    headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
    try:
        async with request.app[SESSION_KEY].request(
            request.method, upstream + request.rel_url.path_qs, data=body, headers=headers, allow_redirects=False
        ) as answer:
            payload = await answer.content.read(MAX_ANSWER_BYTES + 1)
            if len(payload) > MAX_ANSWER_BYTES:
                return unavailable("the service's answer is larger than the console passes on")
            return web.Response(
                status=answer.status,
                body=payload,
                headers={"Content-Type": answer.headers.get("Content-Type", "application/json")},
            )
    except (TimeoutError, aiohttp.ClientError) as error:
        return unavailable(f"service unreachable: {type(error).__name__}")


async def forward_socket(request: web.Request, upstream: str) -> web.StreamResponse:
    """Relay one push socket both ways; the service's close code (4008, 4401, ...) reaches the browser."""
    browser = web.WebSocketResponse(protocols=(PUSH_PROTOCOL,), heartbeat=PUSH_HEARTBEAT_S)
    await browser.prepare(request)
    offered = [item.strip() for item in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if item.strip()]
    try:
        service = await request.app[SESSION_KEY].ws_connect(
            upstream.replace("http", "ws", 1) + "/ws", protocols=offered or (PUSH_PROTOCOL,), heartbeat=None
        )
    except (TimeoutError, aiohttp.ClientError):
        await browser.close(code=CLOSE_UPSTREAM_UNAVAILABLE, message=b"push channel unavailable")
        return browser
    closed_by: dict[str, tuple[int, str]] = {}
    async with service:
        relays = [
            asyncio.create_task(_relay(browser, service, "browser", closed_by)),
            asyncio.create_task(_relay(service, browser, "service", closed_by)),
        ]
        await asyncio.wait(relays, return_when=asyncio.FIRST_COMPLETED)
        for relay in relays:
            relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*relays, return_exceptions=True)
        code, reason = closed_by.get("service") or closed_by.get("browser") or (1000, "")
        await service.close(code=code if code >= 3000 or code == 1000 else 1000)
        await browser.close(code=code, message=reason.encode()[:123])
    return browser


async def _relay(source, target, name: str, closed_by: dict[str, tuple[int, str]]) -> None:
    """Text messages from source to target until source closes; remember its close code and reason."""
    while True:
        message = await source.receive()
        if message.type == WSMsgType.TEXT:
            await target.send_str(message.data)
        elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            closed_by[name] = (
                source.close_code or 1000,
                str(message.extra or "") if message.type == WSMsgType.CLOSE else "",
            )
            return
