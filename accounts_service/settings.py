"""accounts_service settings, read from the environment in main()."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from accounts_service.participant import DEFAULT_PREPARE_BUSY_WAIT_S
from accounts_service.recovery import (DEFAULT_IN_DOUBT_TIMEOUT_S, DEFAULT_RECOVERY_BATCH_MAX,
                                       DEFAULT_RECOVERY_INTERVAL_S, DEFAULT_TOMBSTONE_RETENTION_S,
                                       ParticipantRecoverySettings)
from shared.database import DEFAULT_POOL_SIZE
from shared.http_client import DEFAULT_HTTP_TIMEOUT_S
from shared.settings import (DEFAULT_JWT_ALGORITHM, DEFAULT_JWT_SECRET, DEFAULT_LOG_DIR, JWT_ALGORITHMS,
                             env_bool, env_choice, env_int, env_origins, env_seconds, env_str)

DEFAULT_PORT = 3002
DEFAULT_UNSAFE_WITHDRAW_PAUSE_S = 0.2


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
    customer_service_url: str = "http://127.0.0.1:3001"
    transactions_service_url: str = "http://127.0.0.1:3003"
    log_dir: str = DEFAULT_LOG_DIR
    log_console: bool = False  # also log to stderr when not a terminal (containers)
    demo_endpoints: bool = False
    prepare_busy_wait_s: float = DEFAULT_PREPARE_BUSY_WAIT_S
    unsafe_withdraw_pause_s: float = DEFAULT_UNSAFE_WITHDRAW_PAUSE_S
    db_pool_size: int = DEFAULT_POOL_SIZE
    http_timeout_s: float = DEFAULT_HTTP_TIMEOUT_S
    recovery: ParticipantRecoverySettings = field(default_factory=ParticipantRecoverySettings)

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
            customer_service_url=env_str(environ, "CUSTOMER_SERVICE_URL", cls.customer_service_url),
            transactions_service_url=env_str(environ, "TRANSACTIONS_SERVICE_URL", cls.transactions_service_url),
            log_dir=env_str(environ, "LOG_DIR", DEFAULT_LOG_DIR),
            log_console=env_bool(environ, "LOG_CONSOLE", False),
            demo_endpoints=env_bool(environ, "DEMO_ENDPOINTS", False),
            prepare_busy_wait_s=env_seconds(environ, "PREPARE_BUSY_WAIT_S", DEFAULT_PREPARE_BUSY_WAIT_S),
            unsafe_withdraw_pause_s=env_seconds(environ, "UNSAFE_WITHDRAW_PAUSE_S", DEFAULT_UNSAFE_WITHDRAW_PAUSE_S),
            db_pool_size=env_int(environ, "DB_POOL_SIZE", DEFAULT_POOL_SIZE, minimum=1),
            http_timeout_s=env_seconds(environ, "HTTP_TIMEOUT_S", DEFAULT_HTTP_TIMEOUT_S),
            recovery=ParticipantRecoverySettings(
                in_doubt_timeout_s=env_seconds(environ, "IN_DOUBT_TIMEOUT_S", DEFAULT_IN_DOUBT_TIMEOUT_S),
                interval_s=env_seconds(environ, "RECOVERY_INTERVAL_S", DEFAULT_RECOVERY_INTERVAL_S),
                batch_max=env_int(environ, "RECOVERY_BATCH_MAX", DEFAULT_RECOVERY_BATCH_MAX, minimum=1),
                tombstone_retention_s=env_seconds(environ, "TOMBSTONE_RETENTION_S", DEFAULT_TOMBSTONE_RETENTION_S),
            ),
        )
