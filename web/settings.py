"""The console's settings, read from the environment in main()."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.settings import env_bool, env_int, env_seconds, env_str

DEFAULT_PORT = 3000
DEFAULT_PROXY_TIMEOUT_S = 30.0  # a transfer answers after its decision: allow the prepare deadline and more


@dataclass(frozen=True)
class Settings:
    customer_service_url: str = "http://127.0.0.1:3001"
    accounts_service_url: str = "http://127.0.0.1:3002"
    transactions_service_url: str = "http://127.0.0.1:3003"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    demo_endpoints: bool = False  # shows the panel that breaks things on purpose
    proxy_timeout_s: float = DEFAULT_PROXY_TIMEOUT_S

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        return cls(
            customer_service_url=env_str(environ, "CUSTOMER_SERVICE_URL", cls.customer_service_url),
            accounts_service_url=env_str(environ, "ACCOUNTS_SERVICE_URL", cls.accounts_service_url),
            transactions_service_url=env_str(environ, "TRANSACTIONS_SERVICE_URL", cls.transactions_service_url),
            host=env_str(environ, "HOST", cls.host),
            port=env_int(environ, "PORT", DEFAULT_PORT, minimum=1),
            demo_endpoints=env_bool(environ, "DEMO_ENDPOINTS", False),
            proxy_timeout_s=env_seconds(environ, "PROXY_TIMEOUT_S", DEFAULT_PROXY_TIMEOUT_S),
        )
