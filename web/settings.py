"""The console's settings, read from the environment in main()."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import FromEnviron, count, flag, seconds, text

DEFAULT_PORT = 3000
DEFAULT_PROXY_TIMEOUT_S = 30.0  # a transfer answers after its decision: allow the prepare deadline and more


@dataclass(frozen=True)
class Settings(FromEnviron):
    customer_service_url: str = text("http://127.0.0.1:3001")
    accounts_service_url: str = text("http://127.0.0.1:3002")
    transactions_service_url: str = text("http://127.0.0.1:3003")
    host: str = text("127.0.0.1")
    port: int = count(DEFAULT_PORT)
    demo_endpoints: bool = flag(False)  # shows the panel that breaks things on purpose
    proxy_timeout_s: float = seconds(DEFAULT_PROXY_TIMEOUT_S)
