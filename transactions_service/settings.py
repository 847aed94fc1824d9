"""transactions_service settings, read from the environment in main()."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.http_client import DEFAULT_HTTP_TIMEOUT_S
from shared.settings import ServiceSettings, SettingsError, common_from_environ, env_int, env_seconds, env_str
from transactions_service.batching import (
    DEFAULT_BATCH_MAX_TRANSFERS,
    DEFAULT_BATCH_WINDOW_S,
    DEFAULT_BATCHES_IN_FLIGHT_MAX,
    BatchLimits,
)
from transactions_service.coordinator import (
    DEFAULT_COMPLETION_GRACE_S,
    DEFAULT_DECISION_WRITE_S,
    DEFAULT_IDEMPOTENT_WAIT_S,
    DEFAULT_TRANSFERS_IN_FLIGHT_MAX,
)
from transactions_service.participants import (
    DEFAULT_DECISION_TIMEOUT_S,
    DEFAULT_PREPARE_TIMEOUT_S,
    PARTICIPANT_BATCH_MAX,
)
from transactions_service.push.settings import PushSettings
from transactions_service.recovery import (
    DEFAULT_PREPARE_DEADLINE_S,
    DEFAULT_RECOVERY_BATCH_MAX,
    DEFAULT_RECOVERY_INTERVAL_S,
    DEFAULT_RETRY_FIRST_S,
    DEFAULT_RETRY_MAX_S,
    RecoverySettings,
)

DEFAULT_PORT = 3003


@dataclass(frozen=True)
class Settings(ServiceSettings):
    port: int = DEFAULT_PORT
    accounts_service_url: str = "http://127.0.0.1:3002"
    customer_service_url: str = "http://127.0.0.1:3001"  # its revocation feed
    # Several accounts_service instances (shards); empty means accounts_service_url alone.
    accounts_shard_urls: tuple[str, ...] = ()
    prepare_timeout_s: float = DEFAULT_PREPARE_TIMEOUT_S
    decision_timeout_s: float = DEFAULT_DECISION_TIMEOUT_S
    idempotent_wait_s: float = DEFAULT_IDEMPOTENT_WAIT_S
    http_timeout_s: float = DEFAULT_HTTP_TIMEOUT_S
    completion_grace_s: float = DEFAULT_COMPLETION_GRACE_S
    decision_write_s: float = DEFAULT_DECISION_WRITE_S
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    push: PushSettings = field(default_factory=PushSettings)
    # Group commit (PROTOCOL.md "Batches"). BATCH_MAX_TRANSFERS=1 is the classic one-at-a-time protocol on
    # the single routes. The default 64: the per-message costs (an HTTP request, a round trip, a commit)
    # are paid once for up to 64 transfers, far more than 64 clients keep in one step at once on two
    # cores, and well under the participant's PARTICIPANT_BATCH_MAX (256) per message.
    batch_max_transfers: int = DEFAULT_BATCH_MAX_TRANSFERS
    # How long a batch gathers while an earlier one is in flight (a batch leaves at once when none is).
    batch_window_s: float = DEFAULT_BATCH_WINDOW_S
    # Batches of one step (per participant for messages) in flight at once: the pipeline's depth.
    batches_in_flight_max: int = DEFAULT_BATCHES_IN_FLIGHT_MAX
    transfers_in_flight_max: int = DEFAULT_TRANSFERS_IN_FLIGHT_MAX

    @property
    def batch_limits(self) -> BatchLimits:
        """Every batcher's bounds. Its queue never holds more than the transfers in flight plus one recovery
        pass's completions, so the queue bound is never what refuses a transfer: the admission bound is."""
        return BatchLimits(
            items_max=self.batch_max_transfers,
            window_s=self.batch_window_s,
            in_flight_max=self.batches_in_flight_max,
            queue_max=self.transfers_in_flight_max + self.recovery.batch_max,
        )

    @property
    def participant_urls(self) -> tuple[str, ...]:
        return self.accounts_shard_urls or (self.accounts_service_url,)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        return cls(
            **common_from_environ(environ, default_port=DEFAULT_PORT),
            accounts_service_url=env_str(environ, "ACCOUNTS_SERVICE_URL", cls.accounts_service_url),
            customer_service_url=env_str(environ, "CUSTOMER_SERVICE_URL", cls.customer_service_url),
            prepare_timeout_s=env_seconds(environ, "PREPARE_TIMEOUT_S", DEFAULT_PREPARE_TIMEOUT_S),
            decision_timeout_s=env_seconds(environ, "DECISION_TIMEOUT_S", DEFAULT_DECISION_TIMEOUT_S),
            idempotent_wait_s=env_seconds(environ, "IDEMPOTENT_WAIT_S", DEFAULT_IDEMPOTENT_WAIT_S),
            http_timeout_s=env_seconds(environ, "HTTP_TIMEOUT_S", DEFAULT_HTTP_TIMEOUT_S),
            accounts_shard_urls=tuple(
                url.strip() for url in environ.get("ACCOUNTS_SHARD_URLS", "").split(",") if url.strip()
            ),
            completion_grace_s=env_seconds(environ, "COMPLETION_GRACE_S", DEFAULT_COMPLETION_GRACE_S),
            decision_write_s=env_seconds(environ, "DECISION_WRITE_S", DEFAULT_DECISION_WRITE_S),
            recovery=RecoverySettings(
                interval_s=env_seconds(environ, "RECOVERY_INTERVAL_S", DEFAULT_RECOVERY_INTERVAL_S),
                batch_max=env_int(environ, "RECOVERY_BATCH_MAX", DEFAULT_RECOVERY_BATCH_MAX, minimum=1),
                prepare_deadline_s=env_seconds(environ, "PREPARE_DEADLINE_S", DEFAULT_PREPARE_DEADLINE_S),
                retry_first_s=env_seconds(environ, "RECOVERY_RETRY_FIRST_S", DEFAULT_RETRY_FIRST_S),
                retry_max_s=env_seconds(environ, "RECOVERY_RETRY_MAX_S", DEFAULT_RETRY_MAX_S),
            ),
            push=PushSettings.from_environ(environ),
            batch_max_transfers=_batch_max_transfers(environ),
            batch_window_s=env_int(environ, "BATCH_WINDOW_MS", round(DEFAULT_BATCH_WINDOW_S * 1000)) / 1000,
            batches_in_flight_max=env_int(environ, "BATCHES_IN_FLIGHT_MAX", DEFAULT_BATCHES_IN_FLIGHT_MAX, minimum=1),
            transfers_in_flight_max=env_int(
                environ, "TRANSFERS_IN_FLIGHT_MAX", DEFAULT_TRANSFERS_IN_FLIGHT_MAX, minimum=1
            ),
        )


def _batch_max_transfers(environ: Mapping[str, str]) -> int:
    value = env_int(environ, "BATCH_MAX_TRANSFERS", DEFAULT_BATCH_MAX_TRANSFERS, minimum=1)
    if value > PARTICIPANT_BATCH_MAX:
        raise SettingsError(f"setting BATCH_MAX_TRANSFERS must be <= {PARTICIPANT_BATCH_MAX} (a participant's batch)")
    return value
