"""install_push(app): the /ws route, the listener as a cleanup_ctx resource, sockets closed on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from functools import partial

import structlog
from aiohttp import web

from shared.database import database_unavailable
from shared.service_app import ENGINE_KEY
from transactions_service.push.accounts import CustomerAccounts
from transactions_service.push.hub import Hub
from transactions_service.push.listener import listen_forever
from transactions_service.push.notices import NoticeError, parse_notice
from transactions_service.push.settings import PushSettings
from transactions_service.push.socket import CLOSE_GOING_AWAY, PushChannel, TokenRevoked, never_revoked, push_socket
from transactions_service.push.watch import PushWatch

log = structlog.get_logger()

PUSH_KEY = web.AppKey("push_channel", PushChannel)
# Set before the app starts to plug in revocation (the security work's "is this token revoked?").
TOKEN_REVOKED_KEY = web.AppKey[TokenRevoked]("token_revoked")  # subscripted: TokenRevoked is a Callable alias
WS_PATH = "/ws"


def install_push(app: web.Application, settings: PushSettings, database_url: str, clients_of) -> None:
    """`clients_of(app)` gives the participant clients once they exist (the coordinator's cleanup_ctx)."""
    app.router.add_get(WS_PATH, _push_socket)
    app.cleanup_ctx.append(partial(_push_context, settings=settings, database_url=database_url, clients_of=clients_of))
    app.on_shutdown.append(_close_sockets)


async def _push_socket(request: web.Request) -> web.StreamResponse:
    return await push_socket(request, request.app[PUSH_KEY])


async def _push_context(
    app: web.Application, *, settings: PushSettings, database_url: str, clients_of
) -> AsyncIterator[None]:
    assert ENGINE_KEY in app, "the engine starts before the push channel"
    revoked: TokenRevoked = app.get(TOKEN_REVOKED_KEY, never_revoked)
    hub = Hub(
        send_queue_max=settings.send_queue_max,
        connections_per_user_max=settings.connections_per_user_max,
        subscribers_max=settings.subscribers_max,
    )
    accounts = CustomerAccounts(
        list(clients_of(app)), ttl_s=settings.accounts_ttl_s, cache_max=settings.accounts_cache_max
    )
    watch = PushWatch(app[ENGINE_KEY], settings.watch_lease_s, settings.watch_renew_s)
    app[PUSH_KEY] = PushChannel(settings, hub, accounts, watch, revoked)
    resync = partial(hub.broadcast, {"type": "resync"})
    listening = asyncio.Event()
    listener = asyncio.create_task(
        listen_forever(database_url, partial(_deliver, hub), resync, settings.listener, listening)
    )
    # Start listening before serving, so a socket opened at once hears everything decided after it opened;
    # a database down at start delays nothing beyond the connect timeout (the listener keeps trying).
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(settings.listener.connect_timeout_s):
            await listening.wait()
    tending = asyncio.create_task(watch.tend(lambda: bool(hub.subscribers), resync))
    yield
    for task in (listener, tending):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    try:
        await watch.release()
    except Exception as error:  # a row left behind expires by itself
        if not database_unavailable(error):
            raise


def _deliver(hub: Hub, payload: str) -> None:
    if not hub.subscribers:  # nobody watching (a bench, most of the time): a notice costs no parsing
        return
    try:
        notice = parse_notice(payload)
    except NoticeError as error:
        log.warning("push_notice_unreadable", details={"error": str(error)})
        return
    hub.publish(notice)


async def _close_sockets(app: web.Application) -> None:
    if PUSH_KEY in app:
        for subscriber in list(app[PUSH_KEY].hub.subscribers):
            subscriber.close(CLOSE_GOING_AWAY, "server shutting down")
