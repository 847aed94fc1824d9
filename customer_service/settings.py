"""customer_service settings, read from the environment in main()."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from customer_service.passwords import DEFAULT_ARGON2_MEMORY_KIB, DEFAULT_ARGON2_TIME_COST, MIN_ARGON2_MEMORY_KIB
from customer_service.sessions import DEFAULT_REFRESH_TOKEN_TTL_S
from customer_service.throttle import (
    DEFAULT_LOGIN_ADDRESS_FAILURES_MAX,
    DEFAULT_LOGIN_FAILURES_MAX,
    DEFAULT_LOGIN_WINDOW_S,
    Network,
    parse_trusted_proxies,
)
from shared.auth import DEFAULT_USER_TOKEN_TTL_S
from shared.http_client import DEFAULT_HTTP_TIMEOUT_S
from shared.settings import ServiceSettings, SettingsError, count, from_env, optional_text, seconds, text

DEFAULT_PORT = 3001


def _trusted_proxies(environ: Mapping[str, str], name: str, _default: object) -> tuple[Network, ...]:
    try:
        return parse_trusted_proxies(environ.get(name, ""))
    except ValueError as error:
        raise SettingsError(f"setting {name} must list addresses or networks: {error}") from None


@dataclass(frozen=True)
class Settings(ServiceSettings):
    port: int = count(DEFAULT_PORT)
    jwt_private_key_file: str = optional_text()  # EdDSA: only customer_service holds it, to mint user tokens
    login_failures_max: int = count(DEFAULT_LOGIN_FAILURES_MAX)  # per username within login_window_s
    login_address_failures_max: int = count(DEFAULT_LOGIN_ADDRESS_FAILURES_MAX)  # per client address
    login_window_s: float = seconds(DEFAULT_LOGIN_WINDOW_S)
    token_ttl_s: int = count(DEFAULT_USER_TOKEN_TTL_S)
    refresh_token_ttl_s: int = count(DEFAULT_REFRESH_TOKEN_TTL_S)
    argon2_time_cost: int = count(DEFAULT_ARGON2_TIME_COST)
    argon2_memory_kib: int = count(DEFAULT_ARGON2_MEMORY_KIB, minimum=MIN_ARGON2_MEMORY_KIB)
    accounts_service_url: str = text("http://127.0.0.1:3002")  # asked whether a customer's accounts hold money
    http_timeout_s: float = seconds(DEFAULT_HTTP_TIMEOUT_S)
    # Proxies whose X-Forwarded-For is believed (the Ingress); empty: the socket's peer is the client.
    trusted_proxies: tuple[Network, ...] = from_env(_trusted_proxies, ())
