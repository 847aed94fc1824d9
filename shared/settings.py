"""Reading settings from the environment, once, in a service's main(); never at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_LOG_DIR = "logs"
DEFAULT_JWT_ALGORITHM = "HS256"
JWT_ALGORITHMS = ("HS256", "EdDSA")
# Held open, never churned: a new PostgreSQL connection costs a process fork and a handshake. Sized for
# the default client concurrency (16) plus the recovery loop; overflow covers bursts.
DEFAULT_SERVICE_POOL_SIZE = 20


class SettingsError(ValueError):
    """A setting is missing or malformed."""


def env_str(environ: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = environ.get(name, default)
    if value is None or value == "":
        raise SettingsError(f"setting {name} is required")
    return value


def env_int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = environ.get(name)
    try:
        value = default if raw in (None, "") else int(raw)
    except ValueError:
        raise SettingsError(f"setting {name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"setting {name} must be >= {minimum}, got {value}")
    return value


def env_seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    """A duration in seconds (fractions allowed); never money."""
    raw = environ.get(name)
    try:
        value = default if raw in (None, "") else float(raw)
    except ValueError:
        raise SettingsError(f"setting {name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise SettingsError(f"setting {name} must be positive, got {value}")
    return value


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"setting {name} must be true or false, got {raw!r}")


def process_environ() -> Mapping[str, str]:
    return os.environ


def env_choice(environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(environ, name, default)
    if value not in choices:
        raise SettingsError(f"setting {name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_origins(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated origins (scheme://host[:port]); empty means none. A wildcard is refused."""
    origins = tuple(origin.strip().rstrip("/") for origin in environ.get(name, "").split(",") if origin.strip())
    if "*" in origins:
        raise SettingsError(f"setting {name} lists origins: a wildcard with bearer tokens invites any site in")
    return origins


@dataclass(frozen=True)
class ServiceSettings:
    """The settings every service has; each service's Settings adds its own (and its default PORT)."""

    database_url: str
    host: str = "127.0.0.1"
    port: int = 0
    jwt_secret: str = ""  # no default: a service refuses to start without its keys (shared.auth.check_secrets)
    jwt_algorithm: str = DEFAULT_JWT_ALGORITHM  # HS256 | EdDSA (user tokens)
    jwt_public_key_file: str = ""  # EdDSA: the public key every service verifies user tokens with
    service_token_secret: str = ""  # EdDSA: the HS256 key of service-to-service tokens
    # The key of the coordinator's /2pc calls; transactions_service and accounts_service only.
    coordinator_token_secret: str = ""
    cors_allowed_origins: tuple[str, ...] = ()  # empty: no CORS headers at all
    log_dir: str = DEFAULT_LOG_DIR
    log_console: bool = False  # also log to stderr when not a terminal (containers)
    db_pool_size: int = DEFAULT_SERVICE_POOL_SIZE
    dev_mode: bool = False  # local development (`banking-cli up`): weak or known secrets only warn
    demo_data: bool = True  # `seed-demo` loads the demo data (and its logins) unless DEMO_DATA=false


def common_from_environ(environ: Mapping[str, str], *, default_port: int) -> dict[str, Any]:
    """The ServiceSettings fields, read from the environment, for a service's from_environ."""
    return {
        "database_url": env_str(environ, "DATABASE_URL"),
        "host": env_str(environ, "HOST", "127.0.0.1"),
        "port": env_int(environ, "PORT", default_port, minimum=1),
        "jwt_secret": environ.get("JWT_SECRET", ""),
        "jwt_algorithm": env_choice(environ, "JWT_ALGORITHM", DEFAULT_JWT_ALGORITHM, JWT_ALGORITHMS),
        "jwt_public_key_file": environ.get("JWT_PUBLIC_KEY_FILE", ""),
        "service_token_secret": environ.get("SERVICE_TOKEN_SECRET", ""),
        "coordinator_token_secret": environ.get("COORDINATOR_TOKEN_SECRET", ""),
        "cors_allowed_origins": env_origins(environ, "CORS_ALLOWED_ORIGINS"),
        "log_dir": env_str(environ, "LOG_DIR", DEFAULT_LOG_DIR),
        "log_console": env_bool(environ, "LOG_CONSOLE", False),
        "db_pool_size": env_int(environ, "DB_POOL_SIZE", DEFAULT_SERVICE_POOL_SIZE, minimum=1),
        "dev_mode": env_bool(environ, "DEV_MODE", False),
        "demo_data": env_bool(environ, "DEMO_DATA", True),
    }
