"""Reading settings from the environment, once, in a service's main(); never at import time."""
from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"
DEFAULT_LOG_DIR = "logs"
DEFAULT_JWT_ALGORITHM = "HS256"
JWT_ALGORITHMS = ("HS256", "EdDSA")


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
