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
from shared.settings import ServiceSettings, SettingsError, common_from_environ, env_int, env_seconds, env_str

DEFAULT_PORT = 3001


@dataclass(frozen=True)
class Settings(ServiceSettings):
    port: int = DEFAULT_PORT
    jwt_private_key_file: str = ""  # EdDSA: only customer_service holds it, to mint user tokens
    login_failures_max: int = DEFAULT_LOGIN_FAILURES_MAX  # per username within login_window_s
    login_address_failures_max: int = DEFAULT_LOGIN_ADDRESS_FAILURES_MAX  # per client address
    login_window_s: float = DEFAULT_LOGIN_WINDOW_S
    token_ttl_s: int = DEFAULT_USER_TOKEN_TTL_S
    refresh_token_ttl_s: int = DEFAULT_REFRESH_TOKEN_TTL_S
    argon2_time_cost: int = DEFAULT_ARGON2_TIME_COST
    argon2_memory_kib: int = DEFAULT_ARGON2_MEMORY_KIB
    accounts_service_url: str = "http://127.0.0.1:3002"  # asked whether a customer's accounts hold money
    http_timeout_s: float = DEFAULT_HTTP_TIMEOUT_S
    # Proxies whose X-Forwarded-For is believed (the Ingress); empty: the socket's peer is the client.
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        return cls(
            **common_from_environ(environ, default_port=DEFAULT_PORT),
            jwt_private_key_file=environ.get("JWT_PRIVATE_KEY_FILE", ""),
            login_failures_max=env_int(environ, "LOGIN_FAILURES_MAX", DEFAULT_LOGIN_FAILURES_MAX, minimum=1),
            login_address_failures_max=env_int(
                environ, "LOGIN_ADDRESS_FAILURES_MAX", DEFAULT_LOGIN_ADDRESS_FAILURES_MAX, minimum=1
            ),
            login_window_s=env_seconds(environ, "LOGIN_WINDOW_S", DEFAULT_LOGIN_WINDOW_S),
            token_ttl_s=env_int(environ, "TOKEN_TTL_S", DEFAULT_USER_TOKEN_TTL_S, minimum=1),
            refresh_token_ttl_s=env_int(environ, "REFRESH_TOKEN_TTL_S", DEFAULT_REFRESH_TOKEN_TTL_S, minimum=1),
            argon2_time_cost=env_int(environ, "ARGON2_TIME_COST", DEFAULT_ARGON2_TIME_COST, minimum=1),
            argon2_memory_kib=env_int(
                environ, "ARGON2_MEMORY_KIB", DEFAULT_ARGON2_MEMORY_KIB, minimum=MIN_ARGON2_MEMORY_KIB
            ),
            trusted_proxies=_trusted_proxies(environ),
            accounts_service_url=env_str(environ, "ACCOUNTS_SERVICE_URL", cls.accounts_service_url),
            http_timeout_s=env_seconds(environ, "HTTP_TIMEOUT_S", DEFAULT_HTTP_TIMEOUT_S),
        )


def _trusted_proxies(environ: Mapping[str, str]) -> tuple[Network, ...]:
    try:
        return parse_trusted_proxies(environ.get("TRUSTED_PROXIES", ""))
    except ValueError as error:
        raise SettingsError(f"setting TRUSTED_PROXIES must list addresses or networks: {error}") from None
