"""Named points in the protocol where a test can make this process crash or stall.

Off unless the process starts with FAILPOINTS set, e.g.
    FAILPOINTS="after_accept=crash"            os._exit at that point: a real crash, no cleanup
    FAILPOINTS="after_first_prepare=stall:3"   sleep 3 s there, then go on
Several are separated by commas. When FAILPOINTS is unset, `hit()` is one dict lookup on an empty dict.
"""
from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping

CRASH_EXIT_CODE = 97
KNOWN_FAILPOINTS = frozenset({
    # coordinator (transactions_service)
    "after_accept", "after_first_prepare", "after_all_votes_before_decision",
    "after_decision_before_complete", "between_commits",
    # participant (accounts_service)
    "after_prepare_before_answer", "after_local_commit_before_answer",
})

_active: dict[str, tuple[str, float]] = {}


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


async def hit(name: str) -> None:
    assert name in KNOWN_FAILPOINTS, f"unknown failpoint {name}"
    action = _active.get(name)
    if action is None:
        return
    kind, seconds = action
    if kind == "crash":
        print(f"failpoint {name}: crashing", file=sys.stderr, flush=True)
        os._exit(CRASH_EXIT_CODE)
    await asyncio.sleep(seconds)
