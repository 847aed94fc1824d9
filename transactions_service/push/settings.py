"""The push channel's bounds, each named, read with the service's other settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.settings import env_int, env_seconds
from transactions_service.push.accounts import DEFAULT_ACCOUNTS_CACHE_MAX, DEFAULT_ACCOUNTS_TTL_S
from transactions_service.push.hub import (
    DEFAULT_CONNECTIONS_PER_USER_MAX,
    DEFAULT_SEND_QUEUE_MAX,
    DEFAULT_SUBSCRIBERS_MAX,
)
from transactions_service.push.listener import ListenerSettings

DEFAULT_HEARTBEAT_S = 20.0  # aiohttp pings this often and drops a socket that does not pong
DEFAULT_AUTH_TIMEOUT_S = 5.0  # the first message must authenticate by then (close 4001)
DEFAULT_SEND_TIMEOUT_S = 5.0  # one message's write may wait this long for the client (else 4008)
DEFAULT_REVOCATION_CHECK_S = 30.0  # how often an open socket asks whether its token was revoked
DEFAULT_CLOSE_TIMEOUT_S = 2.0  # a closing handshake waits this long for the client
DEFAULT_CLIENT_MESSAGE_MAX_BYTES = 16 * 1024


@dataclass(frozen=True)
class PushSettings:
    send_queue_max: int = DEFAULT_SEND_QUEUE_MAX
    connections_per_user_max: int = DEFAULT_CONNECTIONS_PER_USER_MAX
    subscribers_max: int = DEFAULT_SUBSCRIBERS_MAX
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    auth_timeout_s: float = DEFAULT_AUTH_TIMEOUT_S
    send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S
    revocation_check_s: float = DEFAULT_REVOCATION_CHECK_S
    close_timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S
    client_message_max_bytes: int = DEFAULT_CLIENT_MESSAGE_MAX_BYTES
    accounts_ttl_s: float = DEFAULT_ACCOUNTS_TTL_S
    accounts_cache_max: int = DEFAULT_ACCOUNTS_CACHE_MAX
    listener: ListenerSettings = field(default_factory=ListenerSettings)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> PushSettings:
        return cls(
            send_queue_max=env_int(environ, "PUSH_SEND_QUEUE_MAX", DEFAULT_SEND_QUEUE_MAX, minimum=1),
            connections_per_user_max=env_int(
                environ, "PUSH_CONNECTIONS_PER_USER_MAX", DEFAULT_CONNECTIONS_PER_USER_MAX, minimum=1
            ),
            subscribers_max=env_int(environ, "PUSH_SUBSCRIBERS_MAX", DEFAULT_SUBSCRIBERS_MAX, minimum=1),
            heartbeat_s=env_seconds(environ, "PUSH_HEARTBEAT_S", DEFAULT_HEARTBEAT_S),
            auth_timeout_s=env_seconds(environ, "PUSH_AUTH_TIMEOUT_S", DEFAULT_AUTH_TIMEOUT_S),
            send_timeout_s=env_seconds(environ, "PUSH_SEND_TIMEOUT_S", DEFAULT_SEND_TIMEOUT_S),
            revocation_check_s=env_seconds(environ, "PUSH_REVOCATION_CHECK_S", DEFAULT_REVOCATION_CHECK_S),
            accounts_ttl_s=env_seconds(environ, "PUSH_ACCOUNTS_TTL_S", DEFAULT_ACCOUNTS_TTL_S),
        )
