"""One LISTEN connection per coordinator process, kept alive: checked on a fixed tick, reconnected with
bounded exponential backoff. A reconnect may have missed notices, so subscribers are told to resync."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import structlog

from shared.database import plain_url

log = structlog.get_logger()

CHANNEL = "transaction_events"  # the channel migration 0004's trigger notifies
DEFAULT_CHECK_INTERVAL_S = 5.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_RECONNECT_FIRST_S = 0.2
DEFAULT_RECONNECT_MAX_S = 10.0


@dataclass(frozen=True)
class ListenerSettings:
    check_interval_s: float = DEFAULT_CHECK_INTERVAL_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    reconnect_first_s: float = DEFAULT_RECONNECT_FIRST_S
    reconnect_max_s: float = DEFAULT_RECONNECT_MAX_S


def reconnect_delay_s(failures: int, settings: ListenerSettings) -> float:
    assert failures >= 1, "a delay follows a failure"
    return min(settings.reconnect_max_s, settings.reconnect_first_s * 2 ** min(failures - 1, 30))


async def listen_forever(
    database_url: str,
    on_payload: Callable[[str], None],
    on_reconnect: Callable[[], None],
    settings: ListenerSettings,
    listening: asyncio.Event | None = None,
) -> None:
    """Run until cancelled; `on_payload` gets each notice's text, `on_reconnect` each reconnection;
    `listening` is set once the first LISTEN is in place."""
    failures = 0
    connected_before = False
    while True:
        try:
            connection = await asyncpg.connect(plain_url(database_url), timeout=settings.connect_timeout_s)
        except (TimeoutError, OSError, asyncpg.PostgresError) as error:
            failures += 1
            log.warning("push_listener_connect_failed", details={"error": str(error), "failures": failures})
            await asyncio.sleep(reconnect_delay_s(failures, settings))
            continue
        try:
            await connection.add_listener(CHANNEL, lambda _c, _pid, _channel, payload: on_payload(payload))
            log.info("push_listener_connected", details={"reconnect": connected_before})
            if connected_before:
                on_reconnect()
            connected_before, failures = True, 0
            if listening is not None:
                listening.set()
            await _watch(connection, settings)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            failures += 1
            log.warning("push_listener_lost", details={"error": str(error)})
            await asyncio.sleep(reconnect_delay_s(failures, settings))
        finally:
            connection.terminate()  # never waits: the server may be gone


async def _watch(connection: asyncpg.Connection, settings: ListenerSettings) -> None:
    """Return (or raise) when the connection is no longer good; a silent TCP death shows at the next check."""
    lost = asyncio.Event()
    connection.add_termination_listener(lambda _connection: lost.set())
    while not lost.is_set():
        try:
            async with asyncio.timeout(settings.check_interval_s):  # not wait_for: 3.11 can swallow a cancel
                await lost.wait()
        except TimeoutError:
            await connection.fetchval("SELECT 1", timeout=settings.connect_timeout_s)
