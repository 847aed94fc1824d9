"""This process's watch on the events channel: its row in push_watchers, live while it has sockets open.

The events trigger (migration 0005) builds and sends notices only while some row is live, so the
transfer path pays nothing for the live console when no console is open. A socket is welcomed only once
this process's row is live, so it hears everything logged after it opened. The row is renewed while
sockets stay open and deleted when the last one has closed; a process that dies leaves a row that
expires by itself. If the row ran out while sockets were open (the database was down longer than the
lease), notices may have been missed, and the sockets are told to resync once it is live again.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.database import database_unavailable
from shared.hot_sql import raw_connection

log = structlog.get_logger()

DEFAULT_WATCH_LEASE_S = 30.0  # a row outlives a process that died by at most this
DEFAULT_WATCH_RENEW_S = 10.0  # how often the row is renewed while sockets are open; well inside the lease

_RENEW = """INSERT INTO push_watchers (watcher_id, watched_until) VALUES ($1, now() + make_interval(secs => $2))
            ON CONFLICT (watcher_id) DO UPDATE SET watched_until = EXCLUDED.watched_until"""
_RELEASE = "DELETE FROM push_watchers WHERE watcher_id = $1"


class PushWatch:
    def __init__(self, engine: AsyncEngine, lease_s: float, renew_s: float) -> None:
        assert 0 < renew_s < lease_s, "renewed well before the lease runs out"
        self.engine = engine
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.watcher_id = f"coordinator-{uuid.uuid4().hex[:12]}"
        self._live_until = 0.0  # monotonic; 0: no row of ours
        self._lock = asyncio.Lock()  # a renewal and a release never cross at the database

    @property
    def live(self) -> bool:
        return time.monotonic() < self._live_until

    async def ensure(self) -> None:
        """Our row live for at least renew_s more (a socket joining): one statement when it is not already."""
        await self.renew(skip_if_live_for_s=self.renew_s)

    async def renew(self, skip_if_live_for_s: float = math.inf) -> None:
        """Write our row for a whole lease, unless it is known live for `skip_if_live_for_s` more (by default,
        always)."""
        async with self._lock:
            if time.monotonic() + skip_if_live_for_s < self._live_until:
                return
            started = time.monotonic()
            async with raw_connection(self.engine) as connection:
                await connection.execute(_RENEW, self.watcher_id, self.lease_s)
            self._live_until = started + self.lease_s  # measured from before the write: never later than the row's

    async def release(self) -> None:
        async with self._lock:
            if not self._live_until:
                return
            self._live_until = 0.0
            async with raw_connection(self.engine) as connection:
                await connection.execute(_RELEASE, self.watcher_id)

    async def tend(self, watched: Callable[[], bool], resync: Callable[[], None]) -> None:
        """Until cancelled, every renew_s: renew while `watched()`, release once it is not. A row found run
        out while watched is written again, then `resync()` tells the sockets they may have missed notices."""
        while True:
            await asyncio.sleep(self.renew_s)
            try:
                if watched():
                    lapsed = not self.live
                    # Every tick, not only when little is left: a tick that came a moment early must not
                    # leave the row to run out before the next one.
                    await self.renew()
                    if lapsed:
                        resync()
                else:
                    await self.release()
            except Exception as error:  # tried again at the next tick; a bug is logged, never silent
                if database_unavailable(error):
                    log.warning("push_watch_unrenewed", details={"error": type(error).__name__})
                else:
                    log.exception("push_watch_failed")
