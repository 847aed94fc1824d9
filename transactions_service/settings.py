"""transactions_service settings, read from the environment in main()."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.http_client import DEFAULT_HTTP_TIMEOUT_S
from shared.settings import ServiceSettings, count, from_env, nested, seconds, text
from transactions_service.coordinator import (
    DEFAULT_COMPLETION_GRACE_S,
    DEFAULT_DECISION_WRITE_S,
    DEFAULT_IDEMPOTENT_WAIT_S,
)
from transactions_service.participants import DEFAULT_DECISION_TIMEOUT_S, DEFAULT_PREPARE_TIMEOUT_S
from transactions_service.push.settings import PushSettings
from transactions_service.recovery import RecoverySettings

DEFAULT_PORT = 3003


def _url_list(environ: Mapping[str, str], name: str, _default: object) -> tuple[str, ...]:
    return tuple(url.strip() for url in environ.get(name, "").split(",") if url.strip())


@dataclass(frozen=True)
class Settings(ServiceSettings):
    port: int = count(DEFAULT_PORT)
    accounts_service_url: str = text("http://127.0.0.1:3002")
    customer_service_url: str = text("http://127.0.0.1:3001")  # its revocation feed
    # Several accounts_service instances (shards); empty means accounts_service_url alone.
    accounts_shard_urls: tuple[str, ...] = from_env(_url_list, ())
    prepare_timeout_s: float = seconds(DEFAULT_PREPARE_TIMEOUT_S)
    decision_timeout_s: float = seconds(DEFAULT_DECISION_TIMEOUT_S)
    idempotent_wait_s: float = seconds(DEFAULT_IDEMPOTENT_WAIT_S)
    http_timeout_s: float = seconds(DEFAULT_HTTP_TIMEOUT_S)
    completion_grace_s: float = seconds(DEFAULT_COMPLETION_GRACE_S)
    decision_write_s: float = seconds(DEFAULT_DECISION_WRITE_S)
    recovery: RecoverySettings = nested(RecoverySettings)
    push: PushSettings = nested(PushSettings)

    @property
    def participant_urls(self) -> tuple[str, ...]:
        return self.accounts_shard_urls or (self.accounts_service_url,)
