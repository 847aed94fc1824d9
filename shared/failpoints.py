"""Named points in the protocol where a test can make this process crash or stall.

Off unless the process starts with FAILPOINTS set, e.g.
    FAILPOINTS="after_accept=crash"            os._exit at that point: a real crash, no cleanup
    FAILPOINTS="after_first_prepare=stall:3"   sleep 3 s there, then go on
Several are separated by commas. When FAILPOINTS is unset, `hit()` is one dict lookup on an empty dict.
A demo may also `arm_once()` a failpoint at runtime: it fires at its next hit, then disarms.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping

from shared import log

CRASH_EXIT_CODE = 97
KNOWN_FAILPOINTS = frozenset(
    {
        # coordinator (transactions_service)
        "after_accept",
        "after_first_prepare",
        "after_all_votes_before_decision",
        "after_decision_before_complete",
        "between_commits",
        # participant (accounts_service)
        "after_prepare_before_answer",
        "after_local_commit_before_answer",
    }
)

ACTIONS = ("crash", "stall")
MAX_STALL_S = 120.0
_active: dict[str, tuple[str, float]] = {}
_once: set[str] = set()


def configure(environ: Mapping[str, str]) -> None:
    """Read FAILPOINTS once at process start."""
    _active.clear()
    for item in filter(None, (part.strip() for part in environ.get("FAILPOINTS", "").split(","))):
        name, _, action = item.partition("=")
        if name not in KNOWN_FAILPOINTS:
            raise ValueError(f"unknown failpoint {name!r}; known: {sorted(KNOWN_FAILPOINTS)}")
        kind, _, seconds = action.partition(":")
        if kind not in ("crash", "stall"):
            raise ValueError(f"failpoint action must be crash or stall:SECONDS, not {action!r}")
        _active[name] = (kind, float(seconds or 0))


def arm_once(name: str, kind: str, seconds: float = 0.0) -> None:
    """Fire `kind` at the next hit of `name` only (the demo panel's "break the next transfer")."""
    assert name in KNOWN_FAILPOINTS, f"unknown failpoint {name}"
    assert kind in ACTIONS, f"unknown failpoint action {kind}"
    assert 0 <= seconds <= MAX_STALL_S, "a bounded stall"
    _active[name] = (kind, seconds)
    _once.add(name)


def armed() -> dict[str, tuple[str, float]]:
    return dict(_active)


async def hit(name: str) -> None:
    assert name in KNOWN_FAILPOINTS, f"unknown failpoint {name}"
    action = _active.get(name)
    if action is None:
        return
    if name in _once:
        _once.discard(name)
        del _active[name]
    kind, seconds = action
    if kind == "crash":
        log.drain()  # the lines before the crash are the story of it: write them, then die without cleanup
        print(f"failpoint {name}: crashing", file=sys.stderr, flush=True)
        os._exit(CRASH_EXIT_CODE)
    await asyncio.sleep(seconds)
