"""Where a service's busy time goes: py-spy's raw (collapsed) stacks summed by component.

    py-spy record --format raw -o coordinator.txt --pid PID -d 20
    python -m harness.profile_summary coordinator.txt participant.txt

Each sample is charged to the innermost frame that belongs to a component we name (asyncpg, aiohttp,
SQLAlchemy, ...), so a socket write inside asyncpg counts as asyncpg, and the event loop's own work
(selectors, callbacks, transports outside any library) as "event loop".
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (component, path fragments), innermost match wins; order breaks ties within one frame.
COMPONENTS = (
    # A sample whose innermost Python frame is run_app is the loop itself, in C: epoll, task steps, sends.
    ("event loop", ("run_app (aiohttp/web.py", "asyncio/", "selectors", "uvloop")),
    ("asyncpg", ("asyncpg/",)),
    ("SQLAlchemy", ("sqlalchemy/",)),
    (
        "aiohttp server",
        (
            "aiohttp/web",
            "aiohttp/_http_parser",
            "aiohttp/http_parser",
            "aiohttp/http_writer",
            "aiohttp/base_protocol",
            "aiohttp/streams",
        ),
    ),
    ("aiohttp client", ("aiohttp/client", "aiohttp/connector")),
    ("aiohttp other", ("aiohttp/", "multidict/", "yarl/")),
    (
        "JSON and schemas",
        ("shared/jsonio", "json/", "jsonschema", "referencing/", "rpds", "orjson", "msgspec", "shared/openapi"),
    ),
    ("logging", ("structlog/", "logging/", "shared/log")),
    ("metrics", ("prometheus_client/", "shared/metrics", "/metrics.py")),
    ("JWT", ("jwt/", "shared/auth", "cryptography/")),
    ("our code", ("transactions_service/", "accounts_service/", "customer_service/", "shared/")),
)
MAX_LINES = 10_000_000  # a 20 s raw profile holds a few thousand distinct stacks
# A thread parked in a timed wait is idle, though py-spy reports it as active (the log writer's tick).
IDLE_FRAMES = ("Condition.wait (threading.py:",)


def component_of(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for component, fragments in COMPONENTS:
            if any(fragment in frame for fragment in fragments):
                return component
    return "other"


def summarise(path: Path) -> Counter:
    samples: Counter = Counter()
    with path.open() as lines:
        for number, line in enumerate(lines):
            assert number < MAX_LINES, "not a py-spy raw profile"
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if stack and count.isdigit() and not stack.rpartition(";")[2].startswith(IDLE_FRAMES):
                samples[component_of(stack)] += int(count)
    return samples


def main(paths: list[str]) -> None:
    for path in paths:
        samples = summarise(Path(path))
        total = sum(samples.values()) or 1
        print(f"{path}: {total} samples")
        for component, count in samples.most_common():
            print(f"  {component:18} {100 * count / total:5.1f}%")


if __name__ == "__main__":
    main(sys.argv[1:])
