"""Reading settings from the environment, once, in a service's main(); never at import time."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Self

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


# How a field of a FromEnviron dataclass is read: read(environ, name, default) -> value.
Reader = Callable[[Mapping[str, str], str, Any], Any]
_READ = "read_from_environ"
_ENV = "environment_name"
_NESTED = "settings_from_environ"


def from_env(read: Reader, default: Any = MISSING, *, env: str = "") -> Any:
    """A settings field that `read` takes from the environment variable `env`; without `env`, the field's
    name in upper case, after its class's ENV_PREFIX. No default: the variable is required."""
    metadata = {_READ: read, _ENV: env}
    return field(metadata=metadata) if default is MISSING else field(default=default, metadata=metadata)


def seconds(default: float, *, env: str = "") -> Any:
    return from_env(env_seconds, default, env=env)


def count(default: int, *, env: str = "", minimum: int = 1) -> Any:
    return from_env(lambda environ, name, fallback: env_int(environ, name, fallback, minimum=minimum), default, env=env)


def text(default: str | None = None, *, env: str = "") -> Any:
    """A string that may not be empty; no default: required."""
    return from_env(env_str, MISSING if default is None else default, env=env)


def optional_text(*, env: str = "") -> Any:
    """A string that may be empty (a secret or a key file that another setting makes unnecessary)."""
    return from_env(lambda environ, name, fallback: environ.get(name, fallback), "", env=env)


def flag(default: bool, *, env: str = "") -> Any:
    return from_env(env_bool, default, env=env)


def choice(default: str, choices: tuple[str, ...], *, env: str = "") -> Any:
    return from_env(lambda environ, name, fallback: env_choice(environ, name, fallback, choices), default, env=env)


def origins(*, env: str = "") -> Any:
    return from_env(lambda environ, name, _fallback: env_origins(environ, name), (), env=env)


def nested(settings_class: type[FromEnviron]) -> Any:
    """A group of settings (recovery, push, ...) that reads its own fields from the same environment."""
    return field(default_factory=settings_class, metadata={_NESTED: settings_class})


@dataclass(frozen=True)
class FromEnviron:
    """Settings whose fields say how each is read (seconds, count, text, ...): one from_environ reads them
    all, so a setting is named once. A field declared without a reader keeps its default."""

    ENV_PREFIX: ClassVar[str] = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        values: dict[str, Any] = {}
        for setting in fields(cls):
            if _NESTED in setting.metadata:
                values[setting.name] = setting.metadata[_NESTED].from_environ(environ)
            elif _READ in setting.metadata:
                name = setting.metadata[_ENV] or cls.ENV_PREFIX + setting.name.upper()
                default = None if setting.default is MISSING else setting.default
                values[setting.name] = setting.metadata[_READ](environ, name, default)
        return cls(**values)


@dataclass(frozen=True)
class ServiceSettings(FromEnviron):
    """The settings every service has; each service's Settings adds its own (and its default port)."""

    database_url: str = text()
    host: str = text("127.0.0.1")
    port: int = count(0)
    jwt_secret: str = optional_text()  # no default: a service refuses to start without its keys (check_secrets)
    jwt_algorithm: str = choice(DEFAULT_JWT_ALGORITHM, JWT_ALGORITHMS)  # HS256 | EdDSA (user tokens)
    jwt_public_key_file: str = optional_text()  # EdDSA: the public key every service verifies user tokens with
    service_token_secret: str = optional_text()  # EdDSA: the HS256 key of service-to-service tokens
    # The key of the coordinator's /2pc calls; transactions_service and accounts_service only.
    coordinator_token_secret: str = optional_text()
    cors_allowed_origins: tuple[str, ...] = origins()  # empty: no CORS headers at all
    log_dir: str = text(DEFAULT_LOG_DIR)
    log_console: bool = flag(False)  # also log to stderr when not a terminal (containers)
    db_pool_size: int = count(DEFAULT_SERVICE_POOL_SIZE)
    dev_mode: bool = flag(False)  # local development (`banking-cli up`): weak or known secrets only warn
    demo_data: bool = flag(True)  # `seed-demo` loads the demo data (and its logins) unless DEMO_DATA=false


DEFAULT_RECOVERY_INTERVAL_S = 1.0
DEFAULT_RECOVERY_BATCH_MAX = 100


@dataclass(frozen=True)
class RecoveryClock(FromEnviron):
    """A recovery loop's own clock (both 2PC sides run one): a fixed tick and a bounded batch per pass."""

    ENV_PREFIX: ClassVar[str] = "RECOVERY_"

    interval_s: float = seconds(DEFAULT_RECOVERY_INTERVAL_S)
    batch_max: int = count(DEFAULT_RECOVERY_BATCH_MAX)
