"""harness.lock_holds: a hold's steps, an account's idle gaps and the holds at once, from logged events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from harness.lock_holds import holds_of, idle_gaps_ms, report

T0 = datetime(2026, 12, 3, tzinfo=UTC)
A, B, C = (uuid.uuid4() for _ in range(3))


def transfer(source: uuid.UUID, destination: uuid.UUID, voted_ms: float, prepare_ms: int) -> list[dict]:
    """Events of one transfer: voted at `voted_ms` after a prepare round trip of `prepare_ms`, decided in
    2 ms, acknowledged 3 ms later."""
    transaction_id = uuid.uuid4()
    steps = [
        ("accepted", voted_ms - prepare_ms - 1, {}),
        ("vote", voted_ms, {"latency_ms": prepare_ms, "batch_size": 2}),
        ("decision", voted_ms, {}),
        ("decision_sent", voted_ms + 2, {}),
        ("acknowledged", voted_ms + 5, {"latency_ms": 3}),
    ]
    return [
        {
            "transaction_id": transaction_id,
            "source_account_id": source,
            "destination_account_id": destination,
            "event_type": event_type,
            "details": details,
            "occurred_at": T0 + timedelta(milliseconds=at_ms),
        }
        for event_type, at_ms, details in steps
    ]


def test_each_hold_runs_from_its_prepare_to_its_acknowledgement_and_an_account_idles_between_holders() -> None:
    first = transfer(A, B, voted_ms=3, prepare_ms=3)  # holds A and B from 0 to 8 ms
    second = transfer(B, C, voted_ms=13, prepare_ms=3)  # B idle from 8 to 10 ms; holds 10 to 18 ms
    unfinished = transfer(A, C, voted_ms=30, prepare_ms=3)[:2]  # no decision logged: left out

    holds = sorted(holds_of(first + second + unfinished), key=lambda hold: hold.launched_ms)

    assert [hold.released_ms - hold.launched_ms for hold in holds] == [8.0, 8.0]
    assert [(hold.prepare_ms, hold.decide_ms, hold.send_ms) for hold in holds] == [(3.0, 2.0, 3.0)] * 2
    assert idle_gaps_ms(holds) == [2.0]
    assert report(holds)[-1].split()[-1] == "0.89"  # 16 ms of holds over an 18 ms span


def test_no_transfer_is_reported_as_such() -> None:
    assert report([]) == ["no committed transfer with all its steps logged in the last minutes"]
