"""The push channel's bounds, each named, read with the service's other settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from shared.settings import FromEnviron, count, seconds
from transactions_service.push.accounts import DEFAULT_ACCOUNTS_CACHE_MAX, DEFAULT_ACCOUNTS_TTL_S
from transactions_service.push.hub import (
    DEFAULT_CONNECTIONS_PER_USER_MAX,
    DEFAULT_SEND_QUEUE_MAX,
    DEFAULT_SUBSCRIBERS_MAX,
)
from transactions_service.push.listener import ListenerSettings
from transactions_service.push.watch import DEFAULT_WATCH_LEASE_S, DEFAULT_WATCH_RENEW_S

DEFAULT_HEARTBEAT_S = 20.0  # aiohttp pings this often and drops a socket that does not pong
DEFAULT_AUTH_TIMEOUT_S = 5.0  # the first message must authenticate by then (close 4001)
DEFAULT_SEND_TIMEOUT_S = 5.0  # one message's write may wait this long for the client (else 4008)
DEFAULT_REVOCATION_CHECK_S = 30.0  # how often an open socket asks whether its token was revoked
DEFAULT_CLOSE_TIMEOUT_S = 2.0  # a closing handshake waits this long for the client
DEFAULT_CLIENT_MESSAGE_MAX_BYTES = 16 * 1024


@dataclass(frozen=True)
class PushSettings(FromEnviron):
    """Read from PUSH_<FIELD> (PUSH_SEND_QUEUE_MAX, ...); the fields without a reader are fixed."""

    ENV_PREFIX: ClassVar[str] = "PUSH_"

    send_queue_max: int = count(DEFAULT_SEND_QUEUE_MAX)
    connections_per_user_max: int = count(DEFAULT_CONNECTIONS_PER_USER_MAX)
    subscribers_max: int = count(DEFAULT_SUBSCRIBERS_MAX)
    heartbeat_s: float = seconds(DEFAULT_HEARTBEAT_S)
    auth_timeout_s: float = seconds(DEFAULT_AUTH_TIMEOUT_S)
    send_timeout_s: float = seconds(DEFAULT_SEND_TIMEOUT_S)
    revocation_check_s: float = seconds(DEFAULT_REVOCATION_CHECK_S)
    close_timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S
    client_message_max_bytes: int = DEFAULT_CLIENT_MESSAGE_MAX_BYTES
    accounts_ttl_s: float = seconds(DEFAULT_ACCOUNTS_TTL_S)
    accounts_cache_max: int = DEFAULT_ACCOUNTS_CACHE_MAX
    watch_lease_s: float = seconds(DEFAULT_WATCH_LEASE_S)
    watch_renew_s: float = seconds(DEFAULT_WATCH_RENEW_S)
    listener: ListenerSettings = field(default_factory=ListenerSettings)
