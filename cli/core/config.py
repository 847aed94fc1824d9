"""Where the services are and where the token lives: defaults, then the config file, then the environment.

The config file is TOML (BANKING_CLI_CONFIG, default ~/.config/banking-cli/config.toml), flat keys:

    customer_service_url = "http://127.0.0.1:3001"
    accounts_service_url = "http://127.0.0.1:3002"
    transactions_service_url = "http://127.0.0.1:3003"
    token_file = "~/.banking-cli/token"
    jwt_secret = "..."          # only for `tokens` and the demos, which mint staff tokens locally
    timeout_s = 10

Each key can be overridden by its environment variable (ENV_BY_KEY); the environment wins. Without a
jwt_secret anywhere, the one `banking-cli up` generated for its data folder (BANKING_DATA_DIR, default
.data, file secrets.json) is used.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from cli.core.errors import InputError

# The services' own default (shared.settings imports only the standard library, so this stays cheap).

DEFAULT_CONFIG_FILE = Path("~/.config/banking-cli/config.toml")
DEFAULT_TOKEN_FILE = Path("~/.banking-cli/token")
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 300.0
CONFIG_FILE_VARIABLE = "BANKING_CLI_CONFIG"
# `banking-cli up`'s data folder, where it keeps the local cluster and the secrets it generated.
DEFAULT_DATA_DIR = Path(".data")
DATA_DIR_VARIABLE = "BANKING_DATA_DIR"
LOCAL_SECRETS_FILE = "secrets.json"
LOCAL_SECRET_NAMES = ("jwt_secret", "service_token_secret", "coordinator_token_secret")

ENV_BY_KEY = {
    "customer_service_url": "CUSTOMER_SERVICE_URL",
    "accounts_service_url": "ACCOUNTS_SERVICE_URL",
    "transactions_service_url": "TRANSACTIONS_SERVICE_URL",
    "token_file": "TOKEN_FILE",
    "jwt_secret": "JWT_SECRET",
    "timeout_s": "BANKING_CLI_TIMEOUT_S",
}
SERVICE_KEYS = {
    "customer": "customer_service_url",
    "accounts": "accounts_service_url",
    "transactions": "transactions_service_url",
}


@dataclass(frozen=True)
class Config:
    customer_service_url: str = "http://127.0.0.1:3001"
    accounts_service_url: str = "http://127.0.0.1:3002"
    transactions_service_url: str = "http://127.0.0.1:3003"
    token_file: Path = DEFAULT_TOKEN_FILE
    jwt_secret: str = ""  # empty: not known here (see local_secrets)
    timeout_s: float = DEFAULT_TIMEOUT_S
    source: str = "defaults"  # which config file was read, for `health` and error hints

    def url(self, service: str) -> str:
        """The base URL of `customer`, `accounts` or `transactions`."""
        return getattr(self, SERVICE_KEYS[service]).rstrip("/")


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    path = Path(environ.get(CONFIG_FILE_VARIABLE) or DEFAULT_CONFIG_FILE).expanduser()
    values: dict[str, object] = {}
    if path.is_file():
        values.update(_read_file(path))
        values["source"] = str(path)
    elif environ.get(CONFIG_FILE_VARIABLE):
        raise InputError(f"config file {path} (from {CONFIG_FILE_VARIABLE}) does not exist")
    values.update({key: environ[variable] for key, variable in ENV_BY_KEY.items() if environ.get(variable)})
    if not values.get("jwt_secret"):
        local = local_secrets(Path(environ.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR), create=False)
        if local:
            values["jwt_secret"] = local["jwt_secret"]
    return _build(values)


def local_secrets(data_dir: Path, *, create: bool) -> dict[str, str] | None:
    """The random secrets of one local data folder (0600): made once by `banking-cli up`, read by the CLI."""
    path = data_dir / LOCAL_SECRETS_FILE
    if not path.is_file():
        if not create:
            return None
        data_dir.mkdir(parents=True, exist_ok=True)
        values = {name: secrets.token_urlsafe(32) for name in LOCAL_SECRET_NAMES}
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(values, file)
        return values
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {path}: {error}") from None
    if not isinstance(values, dict) or not all(isinstance(values.get(name), str) for name in LOCAL_SECRET_NAMES):
        raise InputError(f"{path} does not hold {', '.join(LOCAL_SECRET_NAMES)}; delete it to make new ones")
    return values


def _read_file(path: Path) -> dict[str, object]:
    import tomllib

    try:
        values = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"cannot read config file {path}: {error}") from None
    unknown = sorted(set(values) - set(ENV_BY_KEY))
    if unknown:
        raise InputError(f"unknown key(s) {', '.join(unknown)} in config file {path}; known: {', '.join(ENV_BY_KEY)}")
    return values


def _build(values: dict[str, object]) -> Config:
    known = {field.name for field in fields(Config)}
    assert set(values) <= known, "only known keys reach the config"
    for key in SERVICE_KEYS.values():
        if key in values and not str(values[key]).startswith(("http://", "https://")):
            raise InputError(f"{key} must be an http(s) URL, got {values[key]!r}")
    if "token_file" in values:
        values["token_file"] = Path(str(values["token_file"]))
    if "timeout_s" in values:
        values["timeout_s"] = _timeout(values["timeout_s"])
    # The values are TOML's and the environment's: only their keys are checked (above) against the fields,
    # so their types are not known to mypy here.
    return Config(**values)  # type: ignore[arg-type]


def _timeout(raw: object) -> float:
    try:
        timeout_s = float(str(raw))
    except ValueError:
        raise InputError(f"timeout_s must be a number of seconds, got {raw!r}") from None
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise InputError(f"timeout_s must be between 0 and {MAX_TIMEOUT_S:g} seconds, got {raw!r}")
    return timeout_s


def token_path(config: Config) -> Path:
    return config.token_file.expanduser()
