"""accounts_service settings, read from the environment in main()."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from accounts_service.participant import DEFAULT_PREPARE_BUSY_WAIT_S
from accounts_service.recovery import (
    DEFAULT_IN_DOUBT_TIMEOUT_S,
    DEFAULT_RECOVERY_BATCH_MAX,
    DEFAULT_RECOVERY_INTERVAL_S,
    DEFAULT_TOMBSTONE_RETENTION_S,
    ParticipantRecoverySettings,
)
from shared.errors import ValidationError
from shared.http_client import DEFAULT_HTTP_TIMEOUT_S
from shared.money import parse_money
from shared.settings import ServiceSettings, SettingsError, common_from_environ, env_bool, env_int, env_seconds, env_str

DEFAULT_PORT = 3002
DEFAULT_UNSAFE_WITHDRAW_PAUSE_S = 0.2
# An opening deposit creates money; a teller's is capped at this, a larger one needs an admin.
DEFAULT_TELLER_OPENING_DEPOSIT_MAX = Decimal(10_000)


@dataclass(frozen=True)
class Settings(ServiceSettings):
    port: int = DEFAULT_PORT
    customer_service_url: str = "http://127.0.0.1:3001"
    transactions_service_url: str = "http://127.0.0.1:3003"
    demo_endpoints: bool = False
    prepare_busy_wait_s: float = DEFAULT_PREPARE_BUSY_WAIT_S
    unsafe_withdraw_pause_s: float = DEFAULT_UNSAFE_WITHDRAW_PAUSE_S
    http_timeout_s: float = DEFAULT_HTTP_TIMEOUT_S
    recovery: ParticipantRecoverySettings = field(default_factory=ParticipantRecoverySettings)
    teller_opening_deposit_max: Decimal = DEFAULT_TELLER_OPENING_DEPOSIT_MAX

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        return cls(
            **common_from_environ(environ, default_port=DEFAULT_PORT),
            customer_service_url=env_str(environ, "CUSTOMER_SERVICE_URL", cls.customer_service_url),
            transactions_service_url=env_str(environ, "TRANSACTIONS_SERVICE_URL", cls.transactions_service_url),
            demo_endpoints=env_bool(environ, "DEMO_ENDPOINTS", False),
            prepare_busy_wait_s=env_seconds(environ, "PREPARE_BUSY_WAIT_S", DEFAULT_PREPARE_BUSY_WAIT_S),
            unsafe_withdraw_pause_s=env_seconds(environ, "UNSAFE_WITHDRAW_PAUSE_S", DEFAULT_UNSAFE_WITHDRAW_PAUSE_S),
            http_timeout_s=env_seconds(environ, "HTTP_TIMEOUT_S", DEFAULT_HTTP_TIMEOUT_S),
            teller_opening_deposit_max=_money_setting(
                environ, "TELLER_OPENING_DEPOSIT_MAX", DEFAULT_TELLER_OPENING_DEPOSIT_MAX
            ),
            recovery=ParticipantRecoverySettings(
                in_doubt_timeout_s=env_seconds(environ, "IN_DOUBT_TIMEOUT_S", DEFAULT_IN_DOUBT_TIMEOUT_S),
                interval_s=env_seconds(environ, "RECOVERY_INTERVAL_S", DEFAULT_RECOVERY_INTERVAL_S),
                batch_max=env_int(environ, "RECOVERY_BATCH_MAX", DEFAULT_RECOVERY_BATCH_MAX, minimum=1),
                tombstone_retention_s=env_seconds(environ, "TOMBSTONE_RETENTION_S", DEFAULT_TOMBSTONE_RETENTION_S),
            ),
        )


def _money_setting(environ: Mapping[str, str], name: str, default: Decimal) -> Decimal:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return parse_money(raw, field=name, allow_zero=True)
    except ValidationError as error:
        raise SettingsError(f"setting {name}: {error.message}") from None
