"""The group-commit batcher: leaves at once when idle, gathers while in flight, bounded, failures per batch."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from transactions_service.batching import (
    OVERTAKES_MAX,
    Batch,
    Batcher,
    BatchLimits,
    BatchQueueFullError,
    FlushMiscountError,
    Holds,
)
from transactions_service.settings import Settings


class Recorder:
    """A flush that answers each item doubled, after `pause_s`, and remembers every batch it was given."""

    def __init__(self, pause_s: float = 0.0, failing: set[int] | None = None) -> None:
        self.pause_s = pause_s
        self.failing = failing or set()
        self.batches: list[list[int]] = []
        self.infos: list[Batch] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.request_ids: list[str | None] = []

    async def __call__(self, items: list[int], batch: Batch) -> list[int]:
        self.batches.append(list(items))
        self.infos.append(batch)
        self.request_ids.append(structlog.contextvars.get_contextvars().get("request_id"))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.pause_s)
        finally:
            self.in_flight -= 1
        if self.failing & set(items):
            raise RuntimeError(f"flush failed for {sorted(self.failing & set(items))}")
        return [item * 2 for item in items]


def limits(**overrides) -> BatchLimits:
    # No flight stalls unless a test says so: a slow machine's pause must not change which batch is which.
    defaults = {"items_max": 8, "window_s": 0.005, "in_flight_max": 1, "queue_max": 64, "stall_s": 60.0}
    return BatchLimits(**{**defaults, **overrides})


class Gate:
    """A flush that holds each batch until the test opens its gate, and remembers every batch it was given."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gates: list[asyncio.Event] = []

    async def __call__(self, items: list[int], _batch: Batch) -> list[int]:
        self.batches.append(list(items))
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        return [item * 2 for item in items]


async def test_a_lone_item_leaves_at_once_and_alone() -> None:
    flush = Recorder()
    batcher = Batcher("test", flush, limits(window_s=5.0))

    started = asyncio.get_running_loop().time()
    assert await batcher.submit(21) == 42
    elapsed_s = asyncio.get_running_loop().time() - started

    assert flush.batches == [[21]]
    assert flush.infos[0].size == 1
    assert elapsed_s < 0.1  # the 5 s window never applies when nothing is in flight


async def test_items_submitted_together_leave_together() -> None:
    flush = Recorder()
    batcher = Batcher("test", flush, limits())

    results = await asyncio.gather(*(batcher.submit(item) for item in range(5)))

    assert results == [0, 2, 4, 6, 8]
    assert flush.batches == [[0, 1, 2, 3, 4]]


async def test_items_gather_while_a_batch_is_in_flight() -> None:
    flush = Recorder(pause_s=0.05)
    batcher = Batcher("test", flush, limits(window_s=1.0))

    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)  # the first batch is in flight now
    later = [asyncio.create_task(batcher.submit(item)) for item in range(1, 6)]
    await asyncio.gather(first, *later)

    assert flush.batches == [[0], [1, 2, 3, 4, 5]]
    assert [info.size for info in flush.infos] == [1, 5]
    assert len({info.batch_id for info in flush.infos}) == 2


async def test_a_batch_holds_at_most_items_max_and_the_rest_follow() -> None:
    flush = Recorder(pause_s=0.02)
    batcher = Batcher("test", flush, limits(items_max=3, in_flight_max=1))

    results = await asyncio.gather(*(batcher.submit(item) for item in range(8)))

    assert results == [item * 2 for item in range(8)]
    assert flush.batches == [[0, 1, 2], [3, 4, 5], [6, 7]]


async def test_a_full_batch_leaves_without_waiting_for_the_window_when_a_slot_is_free() -> None:
    flush = Recorder(pause_s=0.2)
    batcher = Batcher("test", flush, limits(items_max=2, in_flight_max=2, window_s=5.0))

    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)
    started = asyncio.get_running_loop().time()
    await asyncio.gather(batcher.submit(1), batcher.submit(2))
    elapsed_s = asyncio.get_running_loop().time() - started
    await first

    assert flush.batches == [[0], [1, 2]]
    assert flush.most_in_flight == 2
    assert elapsed_s < 0.35  # its own flight only: it neither waited for the first nor for the window


async def test_a_gathering_batch_leaves_when_its_window_passes_if_a_slot_is_free() -> None:
    flush = Recorder(pause_s=0.3)
    batcher = Batcher("test", flush, limits(in_flight_max=2, window_s=0.02))

    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)
    started = asyncio.get_running_loop().time()
    assert await batcher.submit(1) == 2
    elapsed_s = asyncio.get_running_loop().time() - started
    await first

    assert flush.batches == [[0], [1]]
    assert 0.3 <= elapsed_s < 0.5  # the window (20 ms) and its own flight (300 ms), not the first's too


async def test_batches_in_flight_never_exceed_their_bound() -> None:
    flush = Recorder(pause_s=0.02)
    batcher = Batcher("test", flush, limits(items_max=2, in_flight_max=2, window_s=0.0))

    async def trickle(item: int) -> int:
        await asyncio.sleep(item * 0.002)
        return await batcher.submit(item)

    results = await asyncio.gather(*(trickle(item) for item in range(20)))

    assert results == [item * 2 for item in range(20)]
    assert flush.most_in_flight == 2
    assert sum(len(batch) for batch in flush.batches) == 20


async def test_a_stalled_flight_gives_its_slot_to_the_next_batch() -> None:
    flush = Gate()
    batcher = Batcher("test", flush, limits(stall_s=0.5, window_s=0.0))

    stuck = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)
    later = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.01)
    assert batcher.flights_stalled() == 0
    assert flush.batches == [[0]]  # one slot: the second waits while the first is young

    await asyncio.wait_for(_until(lambda: len(flush.batches) == 2), timeout=5.0)
    assert flush.batches == [[0], [1]]  # past stall_s, the next batch leaves beside the stuck one
    assert batcher.flights_stalled() == 1
    flush.gates[1].set()
    assert await later == 2
    assert not stuck.done()
    flush.gates[0].set()
    assert await stuck == 0


async def test_flights_stay_within_the_slots_plus_stalled_max() -> None:
    flush = Gate()
    batcher = Batcher("test", flush, limits(stall_s=0.02, window_s=0.0, stalled_max=2))

    submitted = []
    for item in range(6):
        submitted.append(asyncio.create_task(batcher.submit(item)))
        if item < 3:  # each flight stalls before the next item comes
            await asyncio.wait_for(_until(lambda stalled=item + 1: batcher.flights_stalled() == stalled), timeout=5.0)
    await asyncio.sleep(0.05)

    assert flush.batches == [[0], [1], [2]]  # the rest wait: one slot and two stalled flights in the air
    assert batcher.in_flight == 3
    for gate in flush.gates:
        gate.set()
    await asyncio.wait_for(_until(lambda: len(flush.batches) == 4), timeout=5.0)
    for gate in flush.gates:
        gate.set()
    assert await asyncio.wait_for(asyncio.gather(*submitted), timeout=5.0) == [0, 2, 4, 6, 8, 10]
    assert sorted(item for batch in flush.batches for item in batch) == list(range(6))


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.005)


async def test_a_full_queue_refuses_the_item_and_sends_nothing_of_it() -> None:
    flush = Recorder(pause_s=0.05)
    batcher = Batcher("test", flush, limits(items_max=2, queue_max=2))

    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)
    waiting = [asyncio.create_task(batcher.submit(item)) for item in (1, 2)]
    await asyncio.sleep(0)
    with pytest.raises(BatchQueueFullError):
        await batcher.submit(3)
    await asyncio.gather(first, *waiting)

    assert all(3 not in batch for batch in flush.batches)


async def test_a_failed_flush_reaches_every_item_of_its_batch_and_no_other() -> None:
    flush = Recorder(pause_s=0.02, failing={2})
    batcher = Batcher("test", flush, limits(items_max=3))

    outcomes = await asyncio.gather(*(batcher.submit(item) for item in range(6)), return_exceptions=True)

    assert flush.batches == [[0, 1, 2], [3, 4, 5]]
    assert [type(outcome) for outcome in outcomes[:3]] == [RuntimeError] * 3
    assert outcomes[3:] == [6, 8, 10]
    assert await batcher.submit(7) == 14  # the batcher goes on


@pytest.mark.parametrize("items_max", [8, 1], ids=["batched", "one-at-a-time"])
async def test_a_flush_answering_the_wrong_count_fails_each_item_of_its_batch(items_max: int) -> None:
    async def short(items: list[int], _batch: Batch) -> list[int]:
        return items[1:]

    batcher = Batcher("test", short, limits(items_max=items_max))

    outcomes = await asyncio.wait_for(
        asyncio.gather(*(batcher.submit(item) for item in range(3)), return_exceptions=True), timeout=5.0
    )

    # A raised error, not an assert: under `python -O` too, each item hears it at once.
    assert [type(outcome) for outcome in outcomes] == [FlushMiscountError] * 3


async def test_items_whose_keys_meet_wait_for_a_later_batch_in_order() -> None:
    flush = Recorder()
    batcher = Batcher("test", flush, limits(), keys_of=lambda item: [item % 3])

    await asyncio.gather(*(batcher.submit(item) for item in range(7)))

    assert flush.batches == [[0, 1, 2], [3, 4, 5], [6]]


async def test_a_cancelled_item_is_left_out_of_its_batch() -> None:
    flush = Recorder(pause_s=0.05)
    batcher = Batcher("test", flush, limits())

    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)
    cancelled = asyncio.create_task(batcher.submit(1))
    kept = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0)
    cancelled.cancel()
    assert await kept == 4
    await first

    assert flush.batches == [[0], [2]]


async def test_one_item_per_batch_is_the_classic_protocol_with_no_bound_on_concurrency() -> None:
    flush = Recorder(pause_s=0.05)
    batcher = Batcher("test", flush, limits(items_max=1, in_flight_max=1, window_s=5.0))

    results = await asyncio.gather(*(batcher.submit(item) for item in range(5)))

    assert results == [0, 2, 4, 6, 8]
    assert flush.batches == [[0], [1], [2], [3], [4]]
    assert flush.most_in_flight == 5  # each transfer alone, at once, as before batching existed


async def test_close_cancels_what_is_in_flight_and_waiting() -> None:
    flush = Recorder(pause_s=5.0)
    batcher = Batcher("test", flush, limits())
    in_flight = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)

    await batcher.close()

    outcomes = await asyncio.gather(in_flight, waiting, return_exceptions=True)
    assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
    assert batcher.in_flight == 0


async def test_a_batch_of_one_flushes_in_its_callers_context_and_a_batch_of_many_names_the_batch() -> None:
    flush = Recorder(pause_s=0.02)
    batcher = Batcher("test", flush, limits())

    async def submit_as(request_id: str, item: int) -> int:
        structlog.contextvars.bind_contextvars(request_id=request_id)
        return await batcher.submit(item)

    first = asyncio.create_task(submit_as("alone", 0))
    await asyncio.sleep(0.005)
    await asyncio.gather(submit_as("one", 1), submit_as("two", 2))
    await first

    assert flush.batches == [[0], [1, 2]]
    assert flush.request_ids == ["alone", f"batch-{flush.infos[1].batch_id}"]


async def test_an_item_whose_key_is_held_waits_for_its_release_and_later_items_on_that_key_wait_behind_it() -> None:
    flush = Recorder()
    holds = Holds()
    batcher = Batcher("test", flush, limits(), keys_of=lambda item: [item % 10], holds=(holds, lambda item: item))
    holds.take("elsewhere", [1])

    first = asyncio.create_task(batcher.submit(1))  # key 1: held
    later = asyncio.create_task(batcher.submit(11))  # key 1 too: behind the first
    free = asyncio.create_task(batcher.submit(2))
    assert await free == 4
    await asyncio.sleep(0.02)
    assert not first.done() and not later.done()

    holds.release("elsewhere", [1])
    assert await first == 2
    assert not later.done()  # the first's batch took key 1 for it
    holds.release(1, [1])
    assert await later == 22

    assert flush.batches == [[2], [1], [11]]
    assert len(holds) == 2  # keys 2 and 1 (by 11) stay held until their holders release them


async def test_a_later_item_may_take_a_free_key_a_waiting_item_needs_but_only_overtakes_max_times() -> None:
    """Item 0 needs keys 1 (free) and 2 (held). Later items take key 1 meanwhile, OVERTAKES_MAX of them;
    then item 0 reserves its keys up to key 2, and the next item on key 1 waits behind it."""
    flush = Recorder()
    holds = Holds()
    late = OVERTAKES_MAX + 1
    keys = {0: [1, 2]} | {n: [1, 10 + n] for n in range(1, late + 1)}
    batcher = Batcher("test", flush, limits(), keys_of=keys.__getitem__, holds=(holds, lambda item: item))
    holds.take("elsewhere", [2])

    waiting = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)  # item 0 waits first
    for n in range(1, late):
        # key 1 is free: it need not sit idle behind item 0
        assert await asyncio.wait_for(batcher.submit(n), timeout=1) == 2 * n
        holds.release(n, keys[n])
    behind = asyncio.create_task(batcher.submit(late))
    await asyncio.sleep(0.02)
    assert not waiting.done() and not behind.done()

    holds.release("elsewhere", [2])
    assert await waiting == 0
    holds.release(0, keys[0])
    assert await behind == 2 * late
    assert flush.batches == [[n] for n in range(1, late)] + [[0], [late]]


async def test_a_waiting_item_never_reserves_a_key_above_the_one_it_waits_for() -> None:
    """Two participants' prepare batchers share the holds; keys are accounts, taken in increasing order.
    X holds 1 and next wants 2 (at Q); V holds 2 and next wants 3 (at P); W wants 1 and 3 at P and was
    overtaken OVERTAKES_MAX times while 1 was held. Had W reserved 3, V would wait for W, W for X and X for
    V: a cycle until the prepare deadline. W reserves only up to 1, so V goes, then X, then W."""
    holds = Holds()
    keys = {"W": [1, 3], "V": [3], "X": [2]} | {f"T{n}": [3] for n in range(OVERTAKES_MAX)}
    recorded: list[list[str]] = []

    async def flush(items: list[str], _batch: Batch) -> list[str]:
        recorded.append(list(items))
        return [f"{item} prepared" for item in items]

    at_p, at_q = (
        Batcher(name, flush, limits(), keys_of=keys.__getitem__, holds=(holds, lambda item: item))
        for name in ("prepare-P", "prepare-Q")
    )
    holds.take("X", [1])  # X prepared at P
    holds.take("V", [2])  # V prepared at Q
    w = asyncio.create_task(at_p.submit("W"))
    await asyncio.sleep(0.01)
    for n in range(OVERTAKES_MAX):  # 3 is free: later transfers take it past W, then let it go
        await asyncio.wait_for(at_p.submit(f"T{n}"), timeout=1)
        holds.release(f"T{n}", [3])

    assert await asyncio.wait_for(at_p.submit("V"), timeout=1) == "V prepared"
    x = asyncio.create_task(at_q.submit("X"))
    holds.release("V", [2, 3])  # V decided: its participants let both accounts go
    assert await asyncio.wait_for(x, timeout=1) == "X prepared"
    holds.release("X", [1, 2])
    assert await asyncio.wait_for(w, timeout=1) == "W prepared"
    assert recorded[-3:] == [["V"], ["X"], ["W"]]


async def test_releasing_what_is_not_held_changes_nothing() -> None:
    holds = Holds()
    holds.take("a", [1, 2])
    holds.release("b", [1])
    holds.release("a", [3])

    assert holds.held([1]) and holds.held([2]) and not holds.held([3])


async def test_a_key_held_only_by_releasing_holders_counts_as_free() -> None:
    holds = Holds()
    holds.take("a", [1])
    holds.take("b", [2])
    holds.take("c", [2])

    assert not holds.held([1], releasing=frozenset({"a"}))
    assert holds.held([1, 2], releasing=frozenset({"a", "b"}))  # c still holds 2
    assert not holds.held([1, 2], releasing=frozenset({"a", "b", "c"}))
    assert holds.held([1])  # nothing was released


async def test_lend_hands_waiting_items_behind_the_releasing_holders_to_another_message() -> None:
    """Item 1 waits on key 1, held by "a"; item 2 on key 2, held by "b". A message that releases "a" takes
    item 1 along (its key taken for it), leaves item 2 waiting, and the riders hear what settle gives them."""
    flush = Recorder()
    holds = Holds()
    batcher = Batcher("test", flush, limits(), keys_of=lambda item: [item], holds=(holds, lambda item: item))
    holds.take("a", [1])
    holds.take("b", [2])
    rider, left = asyncio.create_task(batcher.submit(1)), asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0.01)

    riders = batcher.lend(frozenset({"a"}))

    assert [entry.item for entry in riders] == [1]
    assert holds.held([1], releasing=frozenset({"a"}))  # item 1 holds key 1 now
    batcher.settle(riders, [10])
    assert await rider == 10
    assert not left.done() and flush.batches == []  # no batch of its own left for either
    holds.release("b", [2])
    assert await left == 4


async def test_an_item_free_already_is_not_lent_but_left_to_its_own_batch() -> None:
    flush = Recorder(pause_s=0.05)
    holds = Holds()
    batcher = Batcher(
        "test", flush, limits(window_s=5.0), keys_of=lambda item: [item], holds=(holds, lambda item: item)
    )
    holds.take("a", [1])
    in_flight = asyncio.create_task(batcher.submit(5))  # leaves at once; the next items gather behind it
    await asyncio.sleep(0.01)
    behind_a, free = asyncio.create_task(batcher.submit(1)), asyncio.create_task(batcher.submit(6))
    await asyncio.sleep(0.01)

    riders = batcher.lend(frozenset({"a"}))

    assert [entry.item for entry in riders] == [1]
    batcher.settle(riders, [10])
    assert (await behind_a, await in_flight, await free) == (10, 10, 12)
    assert flush.batches == [[5], [6]]  # item 6 rode nothing: it left in a batch of this batcher


async def test_a_requeued_rider_lets_its_holds_go_and_leaves_first_in_the_next_batch() -> None:
    """The message's participant deferred item 1 (nothing locked for it there): back in this batcher, ahead
    of item 3, which came later and shares its key."""
    flush = Recorder()
    holds = Holds()
    keys = {1: [1], 3: [1, 3]}
    batcher = Batcher("test", flush, limits(), keys_of=keys.__getitem__, holds=(holds, lambda item: item))
    holds.take("a", [1])
    rider = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.01)
    riders = batcher.lend(frozenset({"a"}))
    later = asyncio.create_task(batcher.submit(3))
    holds.release("a", [1])  # the message's commit let key 1 go; the rider's own hold keeps it
    await asyncio.sleep(0.01)
    assert not later.done()

    batcher.requeue(riders)

    assert await rider == 2
    assert flush.batches[0] == [1]  # the rider first: item 3 needs key 1 too
    holds.release(1, [1])
    assert await later == 6


async def test_riders_hear_the_exception_of_the_message_they_rode() -> None:
    holds = Holds()
    batcher = Batcher("test", Recorder(), limits(), keys_of=lambda item: [item], holds=(holds, lambda item: item))
    holds.take("a", [1])
    rider = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.01)

    riders = batcher.lend(frozenset({"a"}))
    batcher.settle(riders, RuntimeError("the message failed"))

    with pytest.raises(RuntimeError, match="the message failed"):
        await rider


async def test_nothing_rides_without_batching() -> None:
    batcher = Batcher("test", Recorder(), limits(items_max=1, queue_max=1), keys_of=lambda item: [item])

    assert batcher.lend(frozenset({"a"})) == []


@pytest.mark.parametrize("in_flight", ["1", "4", "8"])
def test_every_batches_in_flight_setting_makes_valid_limits(in_flight: str) -> None:
    environ = {"BATCHES_IN_FLIGHT_MAX": in_flight, "DATABASE_URL": "postgresql+asyncpg://localhost/transactions"}
    batch_limits = Settings.from_environ(environ).batch_limits  # stalled flights come on top of any setting

    assert batch_limits.in_flight_max == int(in_flight)
