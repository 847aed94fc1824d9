"""customer_service settings, read from the environment in main()."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from customer_service.passwords import DEFAULT_ARGON2_MEMORY_KIB, DEFAULT_ARGON2_TIME_COST, MIN_ARGON2_MEMORY_KIB
from customer_service.throttle import (DEFAULT_LOGIN_ADDRESS_FAILURES_MAX, DEFAULT_LOGIN_FAILURES_MAX,
                                       DEFAULT_LOGIN_WINDOW_S)
from shared.auth import DEFAULT_USER_TOKEN_TTL_S
from shared.database import DEFAULT_POOL_SIZE
from shared.settings import (DEFAULT_JWT_ALGORITHM, DEFAULT_JWT_SECRET, DEFAULT_LOG_DIR, JWT_ALGORITHMS,
                             env_bool, env_choice, env_int, env_origins, env_seconds, env_str)

DEFAULT_PORT = 3001


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
    jwt_private_key_file: str = ""  # EdDSA: only customer_service holds it, to mint user tokens
    login_failures_max: int = DEFAULT_LOGIN_FAILURES_MAX  # per username within login_window_s
    login_address_failures_max: int = DEFAULT_LOGIN_ADDRESS_FAILURES_MAX  # per client address
    login_window_s: float = DEFAULT_LOGIN_WINDOW_S
    log_dir: str = DEFAULT_LOG_DIR
    log_console: bool = False  # also log to stderr when not a terminal (containers)
    token_ttl_s: int = DEFAULT_USER_TOKEN_TTL_S
    db_pool_size: int = DEFAULT_POOL_SIZE
    argon2_time_cost: int = DEFAULT_ARGON2_TIME_COST
    argon2_memory_kib: int = DEFAULT_ARGON2_MEMORY_KIB

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
            jwt_private_key_file=environ.get("JWT_PRIVATE_KEY_FILE", ""),
            login_failures_max=env_int(environ, "LOGIN_FAILURES_MAX", DEFAULT_LOGIN_FAILURES_MAX, minimum=1),
            login_address_failures_max=env_int(environ, "LOGIN_ADDRESS_FAILURES_MAX",
                                               DEFAULT_LOGIN_ADDRESS_FAILURES_MAX, minimum=1),
            login_window_s=env_seconds(environ, "LOGIN_WINDOW_S", DEFAULT_LOGIN_WINDOW_S),
            log_dir=env_str(environ, "LOG_DIR", DEFAULT_LOG_DIR),
            log_console=env_bool(environ, "LOG_CONSOLE", False),
            token_ttl_s=env_int(environ, "TOKEN_TTL_S", DEFAULT_USER_TOKEN_TTL_S, minimum=1),
            db_pool_size=env_int(environ, "DB_POOL_SIZE", DEFAULT_POOL_SIZE, minimum=1),
            argon2_time_cost=env_int(environ, "ARGON2_TIME_COST", DEFAULT_ARGON2_TIME_COST, minimum=1),
            argon2_memory_kib=env_int(environ, "ARGON2_MEMORY_KIB", DEFAULT_ARGON2_MEMORY_KIB,
                                      minimum=MIN_ARGON2_MEMORY_KIB),
        )
