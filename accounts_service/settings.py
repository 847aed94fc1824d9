"""accounts_service settings, read from the environment in main()."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from accounts_service.participant import DEFAULT_PREPARE_BUSY_WAIT_S
from accounts_service.recovery import ParticipantRecoverySettings
from shared.errors import ValidationError
from shared.http_client import DEFAULT_HTTP_TIMEOUT_S
from shared.money import parse_money
from shared.settings import ServiceSettings, SettingsError, count, flag, from_env, nested, seconds, text

DEFAULT_PORT = 3002
DEFAULT_UNSAFE_WITHDRAW_PAUSE_S = 0.2
# An opening deposit creates money; a teller's is capped at this, a larger one needs an admin.
DEFAULT_TELLER_OPENING_DEPOSIT_MAX = Decimal(10_000)


def _money(environ: Mapping[str, str], name: str, default: Decimal) -> Decimal:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return parse_money(raw, field=name, allow_zero=True)
    except ValidationError as error:
        raise SettingsError(f"setting {name}: {error.message}") from None


@dataclass(frozen=True)
class Settings(ServiceSettings):
    port: int = count(DEFAULT_PORT)
    customer_service_url: str = text("http://127.0.0.1:3001")
    transactions_service_url: str = text("http://127.0.0.1:3003")
    demo_endpoints: bool = flag(False)
    prepare_busy_wait_s: float = seconds(DEFAULT_PREPARE_BUSY_WAIT_S)
    unsafe_withdraw_pause_s: float = seconds(DEFAULT_UNSAFE_WITHDRAW_PAUSE_S)
    http_timeout_s: float = seconds(DEFAULT_HTTP_TIMEOUT_S)
    recovery: ParticipantRecoverySettings = nested(ParticipantRecoverySettings)
    teller_opening_deposit_max: Decimal = from_env(_money, DEFAULT_TELLER_OPENING_DEPOSIT_MAX)
