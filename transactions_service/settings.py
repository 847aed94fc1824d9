"""transactions_service settings, read from the environment in main()."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.database import DEFAULT_POOL_SIZE
from shared.http_client import DEFAULT_HTTP_TIMEOUT_S
from shared.settings import (DEFAULT_JWT_ALGORITHM, DEFAULT_JWT_SECRET, DEFAULT_LOG_DIR, JWT_ALGORITHMS,
                             env_bool, env_choice, env_int, env_origins, env_seconds, env_str)
from transactions_service.coordinator import DEFAULT_COMPLETION_GRACE_S, DEFAULT_IDEMPOTENT_WAIT_S
from transactions_service.participants import DEFAULT_DECISION_TIMEOUT_S, DEFAULT_PREPARE_TIMEOUT_S
from transactions_service.recovery import (DEFAULT_PREPARE_DEADLINE_S, DEFAULT_RECOVERY_BATCH_MAX,
                                           DEFAULT_RECOVERY_INTERVAL_S, DEFAULT_RETRY_FIRST_S, DEFAULT_RETRY_MAX_S,
                                           RecoverySettings)

DEFAULT_PORT = 3003


@dataclass(frozen=True)
class Settings:
    database_url: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_algorithm: str = DEFAULT_JWT_ALGORITHM  # HS256 | EdDSA (user tokens)
    jwt_public_key_file: str = ""  # EdDSA: the public key every service verifies user tokens with
    service_token_secret: str = ""  # EdDSA: the HS256 key of service-to-service tokens
    cors_allowed_origins: tuple[str, ...] = ()  # empty: no CORS headers at all
    accounts_service_url: str = "http://127.0.0.1:3002"
    # Several accounts_service instances (shards); empty means accounts_service_url alone.
    accounts_shard_urls: tuple[str, ...] = ()
    log_dir: str = DEFAULT_LOG_DIR
    log_console: bool = False  # also log to stderr when not a terminal (containers)
    prepare_timeout_s: float = DEFAULT_PREPARE_TIMEOUT_S
    decision_timeout_s: float = DEFAULT_DECISION_TIMEOUT_S
    idempotent_wait_s: float = DEFAULT_IDEMPOTENT_WAIT_S
    http_timeout_s: float = DEFAULT_HTTP_TIMEOUT_S
    db_pool_size: int = DEFAULT_POOL_SIZE
    completion_grace_s: float = DEFAULT_COMPLETION_GRACE_S
    recovery: RecoverySettings = field(default_factory=RecoverySettings)

    @property
    def participant_urls(self) -> tuple[str, ...]:
        return self.accounts_shard_urls or (self.accounts_service_url,)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        return cls(
            database_url=env_str(environ, "DATABASE_URL"),
            host=env_str(environ, "HOST", "127.0.0.1"),
            port=env_int(environ, "PORT", DEFAULT_PORT, minimum=1),
            jwt_secret=env_str(environ, "JWT_SECRET", DEFAULT_JWT_SECRET),
            jwt_algorithm=env_choice(environ, "JWT_ALGORITHM", DEFAULT_JWT_ALGORITHM, JWT_ALGORITHMS),
            jwt_public_key_file=environ.get("JWT_PUBLIC_KEY_FILE", ""),
            service_token_secret=environ.get("SERVICE_TOKEN_SECRET", ""),
            cors_allowed_origins=env_origins(environ, "CORS_ALLOWED_ORIGINS"),
            accounts_service_url=env_str(environ, "ACCOUNTS_SERVICE_URL", cls.accounts_service_url),
            log_dir=env_str(environ, "LOG_DIR", DEFAULT_LOG_DIR),
            log_console=env_bool(environ, "LOG_CONSOLE", False),
            prepare_timeout_s=env_seconds(environ, "PREPARE_TIMEOUT_S", DEFAULT_PREPARE_TIMEOUT_S),
            decision_timeout_s=env_seconds(environ, "DECISION_TIMEOUT_S", DEFAULT_DECISION_TIMEOUT_S),
            idempotent_wait_s=env_seconds(environ, "IDEMPOTENT_WAIT_S", DEFAULT_IDEMPOTENT_WAIT_S),
            http_timeout_s=env_seconds(environ, "HTTP_TIMEOUT_S", DEFAULT_HTTP_TIMEOUT_S),
            db_pool_size=env_int(environ, "DB_POOL_SIZE", DEFAULT_POOL_SIZE, minimum=1),
            accounts_shard_urls=tuple(url.strip() for url in environ.get("ACCOUNTS_SHARD_URLS", "").split(",")
                                      if url.strip()),
            completion_grace_s=env_seconds(environ, "COMPLETION_GRACE_S", DEFAULT_COMPLETION_GRACE_S),
            recovery=RecoverySettings(
                interval_s=env_seconds(environ, "RECOVERY_INTERVAL_S", DEFAULT_RECOVERY_INTERVAL_S),
                batch_max=env_int(environ, "RECOVERY_BATCH_MAX", DEFAULT_RECOVERY_BATCH_MAX, minimum=1),
                prepare_deadline_s=env_seconds(environ, "PREPARE_DEADLINE_S", DEFAULT_PREPARE_DEADLINE_S),
                retry_first_s=env_seconds(environ, "RECOVERY_RETRY_FIRST_S", DEFAULT_RETRY_FIRST_S),
                retry_max_s=env_seconds(environ, "RECOVERY_RETRY_MAX_S", DEFAULT_RETRY_MAX_S),
            ),
        )
