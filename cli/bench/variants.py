"""Which systems one bench compares side by side: a service setting's values, an empty or a loaded database.

Each variant is a fresh system of its own (`--start`), so one run's setting or data never leaks into the next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import product

SETTING_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
MAX_COMPARED_VALUES = 8  # each value is a fresh system and a full set of runs
DEFAULT_SCALE_ACCOUNTS = 1_000_000
DEFAULT_SCALE_TRANSFERS = 5_000_000


@dataclass(frozen=True)
class ScaleSize:
    """How much history the loaded variant starts with."""

    accounts: int
    transfers: int

    def __post_init__(self) -> None:
        assert self.accounts >= 2, "a transfer needs two accounts"
        assert self.transfers >= 0
        assert self.transfers % 2 == 0, "the fixture loads transfers in pairs, there and back"


@dataclass(frozen=True)
class Variant:
    label: str = ""
    service_env: dict[str, str] = field(default_factory=dict)
    preload: ScaleSize | None = None


def parse_setting_values(text: str) -> tuple[str, list[str]]:
    """'NAME=v1,v2' -> ('NAME', ['v1', 'v2']); ValueError when malformed."""
    name, separator, values_text = text.partition("=")
    values = [value.strip() for value in values_text.split(",") if value.strip()]
    if not separator or not SETTING_NAME.fullmatch(name.strip()):
        raise ValueError(f"expected NAME=value1,value2 with an upper-case setting name, got {text!r}")
    if not 1 <= len(values) <= MAX_COMPARED_VALUES:
        raise ValueError(f"give between 1 and {MAX_COMPARED_VALUES} values, got {len(values)}")
    return name.strip(), values


def parse_setting(text: str) -> tuple[str, str]:
    """'NAME=value' -> ('NAME', 'value'), for a setting every variant gets."""
    name, values = parse_setting_values(text)
    if len(values) != 1:
        raise ValueError(f"expected NAME=value, got {text!r}")
    return name, values[0]


def variants(compare_env: str | None, scale: ScaleSize | None) -> list[Variant]:
    """Every value of the compared setting, each on an empty and (with scale) a loaded database."""
    settings: list[dict[str, str]] = [{}]
    if compare_env:
        name, values = parse_setting_values(compare_env)
        settings = [{name: value} for value in values]
    preloads = [None, scale] if scale else [None]
    return [
        Variant(_label(setting, preload, scale is not None), setting, preload)
        for setting, preload in product(settings, preloads)
    ]


def _label(setting: dict[str, str], preload: ScaleSize | None, scaled: bool) -> str:
    parts = [f"{name}={value}" for name, value in setting.items()]
    if scaled:
        parts.append(f"loaded {preload.accounts}/{preload.transfers}" if preload else "empty")
    return " ".join(parts)
