"""GET /ws: the push channel's socket. Authenticated with the access token, never in the URL.

The token comes, first found wins, from the handshake's `Authorization: Bearer` header (programs), a
`Sec-WebSocket-Protocol` entry `bearer.<token>` beside `banking.v1` (browsers), or the first message
`{"type": "auth", "token": ...}` within PUSH_AUTH_TIMEOUT_S. Close codes:

    4001 no authentication in time      4401 token invalid, expired (at its exp) or revoked
    4403 a role that may not listen     4008 slow consumer (send queue full or a send timed out)
    4029 too many connections for user  1013 server full, accounts unknown or the database down:
    1001 server shutting down                try again later
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import jwt
import structlog
from aiohttp import WSMsgType, web

from shared import jsonio
from shared.auth import Principal, verify_token
from shared.callers import AUDIENCE_KEY, TOKEN_KEYS_KEY
from shared.database import database_unavailable
from shared.errors import UnauthorizedError, ValidationError
from transactions_service.push.accounts import AccountsUnavailable, CustomerAccounts
from transactions_service.push.hub import CLOSE_SERVER_FULL, CLOSE_SLOW_CONSUMER, Hub, Subscriber, SubscriberRefused
from transactions_service.push.settings import PushSettings
from transactions_service.push.watch import PushWatch

log = structlog.get_logger()

PROTOCOL = "banking.v1"
BEARER_PROTOCOL_PREFIX = "bearer."
CLOSE_AUTH_TIMEOUT = 4001
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_GOING_AWAY = 1001
LISTENING_ROLES = ("customer", "teller", "admin")
MAX_CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's reason fits in 125 bytes with its code

# "Is this token revoked?" The security work plugs its answer in here; until then nothing is revoked.
TokenRevoked = Callable[[str, Principal], Awaitable[bool]]


async def never_revoked(token: str, principal: Principal) -> bool:
    return False


@dataclass
class PushChannel:
    """What every socket of this process shares."""

    settings: PushSettings
    hub: Hub
    accounts: CustomerAccounts
    watch: PushWatch
    token_revoked: TokenRevoked = never_revoked


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


async def push_socket(request: web.Request, channel: PushChannel) -> web.StreamResponse:
    settings = channel.settings
    socket = web.WebSocketResponse(
        protocols=(PROTOCOL,), heartbeat=settings.heartbeat_s, max_msg_size=settings.client_message_max_bytes
    )
    if not socket.can_prepare(request).ok:
        raise ValidationError("GET /ws speaks WebSocket: send an Upgrade request (see the README)")
    await socket.prepare(request)
    try:
        token, principal = await _authenticate(request, socket, channel)
        own_accounts = await _own_accounts(channel, principal)
        subscriber = channel.hub.join(principal, own_accounts)
    except (Refused, SubscriberRefused) as refusal:
        await _close(socket, refusal.code, refusal.reason, settings)
        return socket
    try:
        await channel.watch.ensure()  # joined first: the watch is never released between the two
    except Exception as error:
        channel.hub.leave(subscriber)
        if not database_unavailable(error):
            raise
        await _close(socket, CLOSE_SERVER_FULL, "database unavailable: try again later", settings)
        return socket
    log.info("push_socket_opened", details={"role": principal.role, "subject": principal.subject})
    try:
        await socket.send_str(jsonio.dumps(_welcome(principal, own_accounts, _expires_at(token))))
        await _serve(socket, subscriber, channel, token)
    finally:
        channel.hub.leave(subscriber)
    await _close(socket, subscriber.close_code or CLOSE_GOING_AWAY, subscriber.close_reason, settings)
    return socket


def _welcome(principal: Principal, own_accounts: frozenset, expires_at: float) -> dict:
    return {
        "type": "welcome",
        "role": principal.role,
        "customer_id": principal.customer_id,
        "accounts": sorted(str(account) for account in own_accounts),
        "expires_at": int(expires_at),
        "streams": ["protocol"] if principal.is_staff else ["protocol", "transfer"],
    }


async def _authenticate(
    request: web.Request, socket: web.WebSocketResponse, channel: PushChannel
) -> tuple[str, Principal]:
    token = _token_from_handshake(request) or await _token_from_first_message(socket, channel.settings)
    try:
        principal = verify_token(request.app[TOKEN_KEYS_KEY], token, audience=request.app[AUDIENCE_KEY])
    except UnauthorizedError as error:
        raise Refused(CLOSE_UNAUTHORIZED, error.message) from None
    if principal.role not in LISTENING_ROLES:
        raise Refused(CLOSE_FORBIDDEN, f"role {principal.role} may not listen")
    if await channel.token_revoked(token, principal):
        raise Refused(CLOSE_UNAUTHORIZED, "token revoked")
    return token, principal


def _token_from_handshake(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    offered = (item.strip() for item in request.headers.get("Sec-WebSocket-Protocol", "").split(","))
    return next(
        (item[len(BEARER_PROTOCOL_PREFIX) :] for item in offered if item.startswith(BEARER_PROTOCOL_PREFIX)), ""
    )


async def _token_from_first_message(socket: web.WebSocketResponse, settings: PushSettings) -> str:
    try:
        message = await socket.receive(timeout=settings.auth_timeout_s)
    except TimeoutError:
        raise Refused(CLOSE_AUTH_TIMEOUT, f"authenticate within {settings.auth_timeout_s:g} s") from None
    try:
        body = jsonio.loads(message.data) if message.type == WSMsgType.TEXT else None
    except jsonio.JsonInputError:
        body = None
    if not isinstance(body, dict) or body.get("type") != "auth" or not isinstance(body.get("token"), str):
        raise Refused(CLOSE_AUTH_TIMEOUT, 'the first message must be {"type": "auth", "token": ...}')
    return body["token"]


async def _own_accounts(channel: PushChannel, principal: Principal) -> frozenset:
    if principal.role != "customer":
        return frozenset()
    assert principal.customer_id is not None, "a customer token names its customer"
    try:
        return await channel.accounts.of(principal.customer_id, fresh=True)
    except AccountsUnavailable:
        raise Refused(CLOSE_SERVER_FULL, "accounts service unavailable: try again later") from None


def _expires_at(token: str) -> float:
    # Read only after verify_token accepted the token, so its claims are the signed ones.
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


async def _serve(socket: web.WebSocketResponse, subscriber: Subscriber, channel: PushChannel, token: str) -> None:
    """Send, read and watch until one of them ends the socket; the others are then stopped."""
    tasks = [
        asyncio.create_task(_send_queued(socket, subscriber, channel.settings)),
        asyncio.create_task(_read_client(socket)),
        asyncio.create_task(_watch(subscriber, channel, token)),
        asyncio.create_task(subscriber.closing.wait()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.warning("push_socket_task_failed", details={"error": repr(outcome)})


async def _send_queued(socket: web.WebSocketResponse, subscriber: Subscriber, settings: PushSettings) -> None:
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the cancellation that stops this task.
    while not socket.closed and not subscriber.closing.is_set():
        text = await subscriber.queue.get()
        try:
            async with asyncio.timeout(settings.send_timeout_s):
                await socket.send_str(text)
        except TimeoutError:
            subscriber.close(CLOSE_SLOW_CONSUMER, f"slow consumer: a send waited over {settings.send_timeout_s:g} s")
            return
        except ConnectionError:
            return


async def _read_client(socket: web.WebSocketResponse) -> None:
    """The client has nothing to say after auth; reading keeps pongs and its close handshake flowing."""
    async for _message in socket:
        pass


async def _watch(subscriber: Subscriber, channel: PushChannel, token: str) -> None:
    """Close at the token's exp; ask whether it was revoked and refresh a customer's accounts on a tick."""
    expires_at = _expires_at(token)
    tick_s = min(channel.settings.revocation_check_s, channel.settings.accounts_ttl_s)
    while True:
        remaining_s = expires_at - time.time()
        if remaining_s <= 0:
            subscriber.close(CLOSE_UNAUTHORIZED, "token expired")
            return
        await asyncio.sleep(min(tick_s, remaining_s))
        if time.time() < expires_at and await channel.token_revoked(token, subscriber.principal):
            subscriber.close(CLOSE_UNAUTHORIZED, "token revoked")
            return
        if subscriber.principal.role == "customer":
            assert subscriber.principal.customer_id is not None, "a customer token names its customer"
            try:
                subscriber.own_accounts = await channel.accounts.of(subscriber.principal.customer_id)
            except AccountsUnavailable:
                pass  # keep the accounts known so far; the next tick asks again


async def _close(socket: web.WebSocketResponse, code: int, reason: str, settings: PushSettings) -> None:
    message = reason.encode()[:MAX_CLOSE_REASON_BYTES]
    try:
        async with asyncio.timeout(settings.close_timeout_s):
            await socket.close(code=code, message=message)
    except (TimeoutError, ConnectionError):
        pass  # a client that does not read its close frame loses the connection anyway
