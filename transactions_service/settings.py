"""transactions_service settings, read from the environment in main()."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.http_client import DEFAULT_HTTP_TIMEOUT_S
from shared.settings import ServiceSettings, SettingsError, count, env_int, from_env, nested, seconds, text
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
from transactions_service.recovery import RecoverySettings

DEFAULT_PORT = 3003


def _url_list(environ: Mapping[str, str], name: str, _default: object) -> tuple[str, ...]:
    return tuple(url.strip() for url in environ.get(name, "").split(",") if url.strip())


def _batch_max_transfers(environ: Mapping[str, str], name: str, default: int) -> int:
    value = env_int(environ, name, default, minimum=1)
    if value > PARTICIPANT_BATCH_MAX:
        raise SettingsError(f"setting {name} must be <= {PARTICIPANT_BATCH_MAX} (a participant's batch)")
    return value


def _milliseconds(environ: Mapping[str, str], name: str, default_s: float) -> float:
    """A short wait given in whole milliseconds (0 allowed: no gathering), held in seconds."""
    return env_int(environ, name, round(default_s * 1000)) / 1000


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
    # Group commit (PROTOCOL.md "Batches"). BATCH_MAX_TRANSFERS=1 is the classic one-at-a-time protocol on
    # the single routes. The default 64: the per-message costs (an HTTP request, a round trip, a commit)
    # are paid once for up to 64 transfers, far more than 64 clients keep in one step at once on two
    # cores, and well under the participant's PARTICIPANT_BATCH_MAX (256) per message.
    batch_max_transfers: int = from_env(_batch_max_transfers, DEFAULT_BATCH_MAX_TRANSFERS)
    # How long a batch gathers while an earlier one is in flight (a batch leaves at once when none is).
    batch_window_s: float = from_env(_milliseconds, DEFAULT_BATCH_WINDOW_S, env="BATCH_WINDOW_MS")
    # Batches of one step (per participant for messages) in flight at once: the pipeline's depth.
    batches_in_flight_max: int = count(DEFAULT_BATCHES_IN_FLIGHT_MAX)
    transfers_in_flight_max: int = count(DEFAULT_TRANSFERS_IN_FLIGHT_MAX)

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
