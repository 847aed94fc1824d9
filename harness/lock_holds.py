"""Where a hot account's time goes, read from the coordinator's events: `python -m harness.lock_holds [URL]`.

For each committed transfer of the last few minutes: when its prepare left (its vote's time less the
prepare's round trip), the steps of its hold (prepare, decide, send), and when its hold ended (the
acknowledgement). Per account, the gap from one holder's release to the next holder's launch is time the
account sat idle. The mean number of holds at once is the sum of the holds over the span they cover: under
the hot workload (five accounts, two per transfer) at most two fit. Event times are the coordinator's
clock; the round trips are whole milliseconds, so each figure is good to about a millisecond. It reads
every committed transfer of the last RECENT_MINUTES, so run it after a hot run alone: transfers of another
workload in that window would count as holds too.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from shared import jsonio

DEFAULT_URL = "postgresql://postgres@127.0.0.1:55432/transactions"  # `make up`'s coordinator database
RECENT_MINUTES = 10
# A gap beyond this is a pause between runs, not an account waiting for its next holder.
IDLE_GAP_MAX_MS = 50.0

_EVENTS = """
SELECT t.transaction_id, t.source_account_id, t.destination_account_id, e.event_type, e.details, e.occurred_at
FROM transactions t JOIN transaction_events e USING (transaction_id)
WHERE t.status IN ('committed', 'completed') AND t.created_at > now() - make_interval(mins => $1)
ORDER BY e.event_id
"""
_STEPS = ("vote", "decision", "decision_sent", "acknowledged")


@dataclass(frozen=True, slots=True)
class Hold:
    accounts: tuple[UUID, UUID]
    launched_ms: float
    prepare_ms: float
    decide_ms: float
    send_ms: float
    released_ms: float
    prepare_batch_size: int


def holds_of(rows: list[Any]) -> list[Hold]:
    """One Hold per transfer whose four steps were all logged (rows: asyncpg records, or dicts alike)."""
    steps: dict[UUID, dict[str, tuple[float, dict[str, Any]]]] = defaultdict(dict)
    accounts: dict[UUID, tuple[UUID, UUID]] = {}
    for row in rows:
        details = row["details"] if isinstance(row["details"], dict) else jsonio.loads(row["details"])
        steps[row["transaction_id"]][row["event_type"]] = (row["occurred_at"].timestamp() * 1000, details)
        accounts[row["transaction_id"]] = (row["source_account_id"], row["destination_account_id"])
    holds = []
    for transaction_id, logged in steps.items():
        if not all(step in logged for step in _STEPS):
            continue
        (voted, vote), (deciding, _), (sending, _), (acknowledged, _) = (logged[step] for step in _STEPS)
        prepare_ms = float(vote.get("latency_ms") or 0)
        holds.append(
            Hold(
                accounts=accounts[transaction_id],
                launched_ms=voted - prepare_ms,
                prepare_ms=prepare_ms,
                decide_ms=sending - deciding,
                send_ms=acknowledged - sending,
                released_ms=acknowledged,
                prepare_batch_size=int(vote.get("batch_size") or 1),
            )
        )
    return holds


def idle_gaps_ms(holds: list[Hold]) -> list[float]:
    """Per account, each release to the next holder's launch."""
    by_account: dict[UUID, list[Hold]] = defaultdict(list)
    for hold in holds:
        for account in hold.accounts:
            by_account[account].append(hold)
    gaps = []
    for account_holds in by_account.values():
        account_holds.sort(key=lambda hold: hold.launched_ms)
        for earlier, later in itertools.pairwise(account_holds):
            gap = later.launched_ms - earlier.released_ms
            if abs(gap) < IDLE_GAP_MAX_MS:
                gaps.append(gap)
    return gaps


def report(holds: list[Hold]) -> list[str]:
    if not holds:
        return ["no committed transfer with all its steps logged in the last minutes"]
    span_ms = max(hold.released_ms for hold in holds) - min(hold.launched_ms for hold in holds)
    figures = {
        "prepare round trip": [hold.prepare_ms for hold in holds],
        "decide": [hold.decide_ms for hold in holds],
        "decision send and acknowledgement": [hold.send_ms for hold in holds],
        "hold, prepare sent to acknowledged": [hold.released_ms - hold.launched_ms for hold in holds],
        "account idle, release to next launch": idle_gaps_ms(holds) or [0.0],
    }
    lines = [f"{len(holds)} committed transfers"]
    lines += [
        f"{name:40s} mean {statistics.mean(values):7.2f} ms   median {statistics.median(values):7.2f} ms"
        for name, values in figures.items()
    ]
    lines.append(f"{'prepare batch size':40s} mean {statistics.mean(h.prepare_batch_size for h in holds):7.2f}")
    lines.append(f"{'holds at once':40s} mean {sum(h.released_ms - h.launched_ms for h in holds) / span_ms:7.2f}")
    return lines


async def main(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(_EVENTS, RECENT_MINUTES)
    finally:
        await connection.close()
    print("\n".join(report(holds_of(rows))))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL))
