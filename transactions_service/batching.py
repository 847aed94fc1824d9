"""Group commit: many transfers' items carried by one flush (one statement, one message), pipelined.

A batch leaves at once when no batch of its batcher is in flight, so a lone transfer waits for
nothing. While earlier batches are in flight, items gather; the gathering batch leaves when a flight
slot is free and either nothing is in flight any more, or it is full, or its window has passed. So the
batch size follows the load: one under light load, up to `items_max` under heavy load. A flight in the
air past `stall_s` (a message waiting at its participant) gives its slot to the next batch, up to
`in_flight_max + stalled_max` flights in the air, so one slow message holds back its step for a bounded
time only.

A batch is a transport, not a unit of atomicity (PROTOCOL.md, "Batches"): every item gets its own
result from the flush, and an exception of a flush reaches every item of that batch and no other.
Items whose keys meet a key already in the batch being formed wait for a later batch (one transfer
per account in a prepare message, one row per transfer in a statement), keeping their order.

A batcher may also share `Holds` with its callers: the keys an item takes when its batch leaves (the
accounts a prepare locks) and keeps until its caller releases them (once the participant let the lock
go). An item whose keys are held waits, so a prepare never meets a lock this coordinator knows is taken.
A later item may take a free key that a waiting item also needs (the waiting one cannot go yet anyway),
but only OVERTAKES_MAX times: after that the waiting item reserves its keys up to the lowest one it
waits for (never above it, which would break the account-id order and let waits form a cycle), and
every later item sharing a reserved key waits behind it (first come, first served per key). So a free
account does not sit idle behind a transfer waiting for its other account, and no transfer waits for
ever.

A batch of one flushes in its caller's context, so its request id reaches the participant as before
batching; a batch of many flushes in a fresh context whose request id names the batch (`batch-<id>`),
since no one transfer's request id speaks for the others (each transfer's own lines carry its id).
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import structlog

from shared.errors import ServiceUnavailableError

log = structlog.get_logger()

Item = TypeVar("Item")
Result = TypeVar("Result")

# Defaults of the coordinator's settings (transactions_service/settings.py), here so tests share them.
DEFAULT_BATCH_MAX_TRANSFERS = 64
DEFAULT_BATCH_WINDOW_S = 0.002
# One batch of a step in flight per participant: the next gathers for exactly one round trip (group commit as
# PostgreSQL's WAL flush does it). With four, a batch left each window while others flew: smaller batches,
# more messages. A/B of fresh systems, uniform at 64 clients: 1,030 and 1,026/s against 937 and 944/s, CPU
# 1.40 against 1.63 and 1.55 ms per transfer; hot 302 against 296 and 285/s (docs/benchmarks/README.md).
# The cost, one slow message holding back its step for this participant, is bounded by the stall rule below.
DEFAULT_BATCHES_IN_FLIGHT_MAX = 1
# A flight in the air longer than this no longer holds its slot: the next batch may leave beside it. A
# prepare message meeting another replica's lock waits at the participant up to its busy wait (2 s); every
# later prepare to that participant waited with it. A flight takes a round trip (a few ms, tens on a
# loaded slow day), so at 64 clients the rule almost never fires and the batches stay as large.
DEFAULT_BATCH_STALL_S = 0.2
# Flights of one batcher in the air at once: at most in_flight_max + this, whatever stalls. It bounds the rule
# above when every flight stalls (a participant or database that hangs). It applies to the database
# batchers too: a slow statement lets up to this many more run beside it, each on its own connection.
DEFAULT_BATCH_STALLED_MAX = 3
DEFAULT_BATCH_QUEUE_MAX = 8192
# How often later items may take a free key a waiting item also needs before it reserves its keys. Each
# overtake can delay the waiting item by one hold of that key (a few ms). With none allowed, under five
# hot accounts a free account sat behind a transfer waiting for its other one: 1.2 locks held at once on
# average, where 2 fit.
OVERTAKES_MAX = 4


@dataclass(frozen=True, slots=True)
class Batch:
    """The batch an item rode in: its id and how many items it carried."""

    batch_id: str
    size: int

    def __post_init__(self) -> None:
        assert self.size >= 1, "a batch carries at least one item"

    def details(self) -> dict[str, Any]:
        """What a protocol event records of the batch (banking-cli trace shows it)."""
        return {"batch_id": self.batch_id, "batch_size": self.size}


def new_batch(size: int) -> Batch:
    return Batch(uuid.uuid4().hex[:12], size)


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """The bounds of one batcher. items_max == 1 sends every item alone, at once (no batching)."""

    items_max: int = DEFAULT_BATCH_MAX_TRANSFERS
    window_s: float = DEFAULT_BATCH_WINDOW_S
    in_flight_max: int = DEFAULT_BATCHES_IN_FLIGHT_MAX
    queue_max: int = DEFAULT_BATCH_QUEUE_MAX
    stall_s: float = DEFAULT_BATCH_STALL_S
    stalled_max: int = DEFAULT_BATCH_STALLED_MAX

    def __post_init__(self) -> None:
        assert self.items_max >= 1, "a batch carries at least one item"
        assert self.window_s >= 0, "a window is a duration"
        assert self.in_flight_max >= 1, "at least one batch may fly"
        assert self.queue_max >= self.items_max, "the queue holds a whole batch"
        assert self.stall_s > 0, "a stall is a duration"
        assert self.stalled_max >= 0, "a count of flights"


class BatchQueueFullError(ServiceUnavailableError):
    """The batcher's queue holds queue_max items already; this item was not taken (nothing was sent)."""


class FlushMiscountError(RuntimeError):
    """A flush answered a different number of results than it was given items: a bug in the flush. It is
    raised, not asserted, so that even under `python -O` every item of the batch hears it at once instead
    of waiting for its deadline."""


def _answered(results: list[Result], items: int, name: str) -> list[Result]:
    if len(results) != items:
        raise FlushMiscountError(f"{name} flush answered {len(results)} results for {items} items")
    return results


class Holds:
    """Keys held by holders (transfers) past a batcher, until each holder releases them; a key is free when
    no holder holds it. Releasing wakes the batchers that wait on held keys."""

    def __init__(self) -> None:
        self._holders: dict[Hashable, set[Hashable]] = {}
        self._waiters: list[Callable[[], None]] = []

    def held(self, keys: Iterable[Hashable], releasing: frozenset[Hashable] = frozenset()) -> bool:
        """Whether a key is held by a holder other than those in `releasing` (about to release theirs)."""
        return any(not self._holders.get(key, releasing) <= releasing for key in keys)

    def take(self, holder: Hashable, keys: Iterable[Hashable]) -> None:
        for key in keys:
            self._holders.setdefault(key, set()).add(holder)

    def release(self, holder: Hashable, keys: Iterable[Hashable]) -> None:
        """Idempotent: keys this holder does not hold are left as they are."""
        freed = False
        for key in keys:
            holders = self._holders.get(key)
            if holders is not None and holder in holders:
                holders.discard(holder)
                if not holders:
                    del self._holders[key]
                    freed = True
        if freed:
            for wake in self._waiters:
                wake()

    def wake_on_release(self, wake: Callable[[], None]) -> None:
        self._waiters.append(wake)

    def __len__(self) -> int:
        return len(self._holders)


Flush = Callable[[list[Item], Batch], Awaitable[list[Result]]]
KeysOf = Callable[[Item], Iterable[Hashable]]


@dataclass(slots=True)
class _Waiting(Generic[Item, Result]):
    """A waiting item: the future its caller awaits, the caller's context (see the module doc), its keys,
    and how many later items took a key it needs while it waited."""

    item: Item
    future: asyncio.Future[Result]
    context: contextvars.Context
    keys: frozenset[Hashable]
    overtaken: int = 0


class Batcher(Generic[Item, Result]):
    """`await batcher.submit(item)` -> that item's result, from one flush of the batch it rode in."""

    def __init__(
        self,
        name: str,
        flush: Flush[Item, Result],
        limits: BatchLimits,
        keys_of: KeysOf | None = None,
        holds: tuple[Holds, Callable[[Item], Hashable]] | None = None,
    ):
        """`keys_of`: the keys no two items of one batch share. `holds`: the Holds the items' keys are taken
        in when their batch leaves, and each item's holder (who releases them)."""
        assert holds is None or keys_of is not None, "holds are taken on an item's keys"
        self.name = name
        self.limits = limits
        self._flush = flush
        self._keys_of = keys_of
        self._holds = holds
        self._waiting: deque[_Waiting[Item, Result]] = deque()
        self._flights: set[asyncio.Task[None]] = set()
        self._stall_timers: dict[asyncio.Task[None], asyncio.TimerHandle] = {}
        self._stalled: set[asyncio.Task[None]] = set()
        self._launch_scheduled = False
        self._window: asyncio.TimerHandle | None = None
        self._window_passed = False
        self.batches_sent = 0
        self.items_sent = 0
        self._flights_stalled = 0
        self.on_stall: Callable[[], None] = _nothing  # a metric's inc, say: called once per stalled flight
        if holds is not None and limits.items_max > 1:
            holds[0].wake_on_release(self._schedule_launch)

    async def submit(self, item: Item) -> Result:
        if self.limits.items_max == 1:  # no batching: today's one-at-a-time protocol, nothing waits
            return _answered(await self._flush([item], new_batch(1)), 1, self.name)[0]
        if len(self._waiting) >= self.limits.queue_max:
            raise BatchQueueFullError(f"{self.name} queue is full", details={"queue_max": self.limits.queue_max})
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        keys = frozenset(self._keys_of(item)) if self._keys_of is not None else frozenset()
        self._waiting.append(_Waiting(item, future, contextvars.copy_context(), keys))
        self._schedule_launch()
        # A cancelled caller cancels its future: a batch not yet formed leaves the item out.
        return await future

    @property
    def in_flight(self) -> int:
        return len(self._flights)

    def flights_stalled(self) -> int:
        """Flights so far that stayed in the air past stall_s, their slot given to the next batch."""
        return self._flights_stalled

    def waiting(self) -> int:
        """Items waiting for a batch (cancelled ones not yet dropped included)."""
        return len(self._waiting)

    async def close(self) -> None:
        """Stop the batches in flight (their items hear CancelledError) and fail the waiting ones."""
        if self._window is not None:
            self._window.cancel()
            self._window = None
        for entry in self._waiting:
            entry.future.cancel()
        self._waiting.clear()
        for timer in self._stall_timers.values():
            timer.cancel()
        for task in list(self._flights):
            task.cancel()
        await asyncio.gather(*self._flights, return_exceptions=True)

    def _schedule_launch(self) -> None:
        # On the next turn of the loop, not now: items submitted in the same turn leave together.
        if not self._launch_scheduled:
            self._launch_scheduled = True
            asyncio.get_running_loop().call_soon(self._launch_ready)

    def _slot_free(self) -> bool:
        """A stalled flight (in the air past stall_s) leaves its slot to the next batch; at most
        in_flight_max + stalled_max flights are in the air (a launch needs a slot and stalled <= stalled_max)."""
        flying = len(self._flights) - len(self._stalled)
        return flying < self.limits.in_flight_max and len(self._stalled) <= self.limits.stalled_max

    def _launch_ready(self) -> None:
        self._launch_scheduled = False
        while self._waiting and self._slot_free():
            flying = len(self._flights) > len(self._stalled)
            ready = not flying or self._window_passed or len(self._waiting) >= self.limits.items_max
            if not ready:
                self._open_window()
                return
            batch = self._take_batch()
            if not batch:
                return  # every waiting item waits on a held key: a release launches it
            self._launch(batch)

    def _open_window(self) -> None:
        """The gathering batch leaves window_s after it could not leave at once, if a slot is free by then."""
        if self._window is None:
            self._window = asyncio.get_running_loop().call_later(self.limits.window_s, self._window_closes)

    def _window_closes(self) -> None:
        self._window = None
        self._window_passed = True
        self._launch_ready()

    def lend(self, releasing: frozenset[Hashable]) -> list[_Waiting[Item, Result]]:
        """Waiting items that may ride another batcher's message, whose first act there releases the keys
        the holders in `releasing` hold (a commit, then the prepares behind it): those waiting only on
        those keys. The caller flushes them and hands their results to `settle`. Taken as a batch of this
        batcher would be, holds included; an item free already is left to this batcher's own batches, so
        riding never splits them (under uniform load that cost more than it saved)."""
        if self.limits.items_max == 1 or not releasing:
            return []
        riders = self._take_batch(releasing, freed_only=True)
        self.items_sent += len(riders)
        return riders

    def requeue(self, entries: list[_Waiting[Item, Result]]) -> None:
        """Lent items the other message did not carry after all (its participant deferred them): their holds
        let go (nothing was locked for them) and back at the head of the queue, in order, for the next batch."""
        if self._holds is not None:
            holds, holder_of = self._holds
            for entry in entries:
                holds.release(holder_of(entry.item), entry.keys)
        self._waiting.extendleft(reversed(entries))
        self._schedule_launch()

    @staticmethod
    def settle(entries: list[_Waiting[Item, Result]], results: list[Result] | BaseException) -> None:
        """Each entry's caller hears its result, or the flush's exception (a cancellation cancels them)."""
        if isinstance(results, BaseException):
            for entry in entries:
                if isinstance(results, asyncio.CancelledError):
                    entry.future.cancel()
                elif not entry.future.done():
                    entry.future.set_exception(results)
            return
        assert len(results) == len(entries), "a flush answers every item"
        for entry, result in zip(entries, results, strict=True):
            if not entry.future.done():
                entry.future.set_result(result)

    def _take_batch(
        self, releasing: frozenset[Hashable] = frozenset(), *, freed_only: bool = False
    ) -> list[_Waiting[Item, Result]]:
        """Up to items_max waiting items, oldest first; cancelled ones dropped. An item whose keys meet the
        batch's, a key held (by a holder not in `releasing`) or a reserved key stays waiting, in order; once
        overtaken OVERTAKES_MAX times it reserves its keys up to the lowest it waits for (_reservable).
        `freed_only`: an item none of whose keys is held now stays waiting too."""
        batch: list[_Waiting[Item, Result]] = []
        taken: set[Hashable] = set()
        reserved: set[Hashable] = set()
        left: list[_Waiting[Item, Result]] = []
        while self._waiting and len(batch) < self.limits.items_max:
            entry = self._waiting.popleft()
            if entry.future.done():
                continue
            if entry.keys or freed_only:
                free = taken.isdisjoint(entry.keys) and reserved.isdisjoint(entry.keys)
                blocked = self._held(entry.keys, releasing) or (freed_only and not self._held(entry.keys))
                if not free or blocked:
                    left.append(entry)
                    if entry.overtaken >= OVERTAKES_MAX:
                        unavailable = {
                            key
                            for key in entry.keys
                            if key in taken or key in reserved or self._held(frozenset((key,)), releasing)
                        }
                        reserved |= _reservable(entry.keys, unavailable)
                    continue
                for earlier in left:
                    if not earlier.keys.isdisjoint(entry.keys):
                        earlier.overtaken += 1
                taken |= entry.keys
            batch.append(entry)
        self._waiting.extendleft(reversed(left))
        if self._holds is not None:
            holds, holder_of = self._holds
            for entry in batch:
                holds.take(holder_of(entry.item), entry.keys)
        return batch

    def _held(self, keys: frozenset[Hashable], releasing: frozenset[Hashable] = frozenset()) -> bool:
        return self._holds is not None and self._holds[0].held(keys, releasing)

    def _launch(self, batch: list[_Waiting[Item, Result]]) -> None:
        if self._window is not None:
            self._window.cancel()
            self._window = None
        self._window_passed = False
        self.batches_sent += 1
        self.items_sent += len(batch)
        info = new_batch(len(batch))
        context = batch[0].context if len(batch) == 1 else _context_of(info)
        task = asyncio.create_task(self._fly(batch, info), name=f"{self.name}-batch", context=context)
        self._flights.add(task)
        self._stall_timers[task] = asyncio.get_running_loop().call_later(
            self.limits.stall_s, self._stalls, task, info, context=context
        )
        task.add_done_callback(self._landed)

    def _stalls(self, task: asyncio.Task[None], info: Batch) -> None:
        self._stall_timers.pop(task, None)
        if task.done():
            return
        self._stalled.add(task)
        self._flights_stalled += 1
        self.on_stall()
        log.info(
            "batch_flight_stalled", details={"batcher": self.name, **info.details(), "after_s": self.limits.stall_s}
        )
        if self._waiting:
            self._schedule_launch()

    def _landed(self, task: asyncio.Task[None]) -> None:
        self._flights.discard(task)
        self._stalled.discard(task)
        timer = self._stall_timers.pop(task, None)
        if timer is not None:
            timer.cancel()
        if self._waiting:
            self._schedule_launch()

    async def _fly(self, batch: list[_Waiting[Item, Result]], info: Batch) -> None:
        try:
            # Checked here, not only in settle: a flush answering the wrong count is this batch's error,
            # which each of its items hears, never a dead task that leaves them waiting.
            results = _answered(await self._flush([entry.item for entry in batch], info), len(batch), self.name)
        except asyncio.CancelledError as cancelled:
            self.settle(batch, cancelled)
            raise
        except Exception as error:  # every item of this batch hears it; the batcher goes on
            self.settle(batch, error)
            return
        self.settle(batch, results)


def _nothing() -> None:
    pass


def _context_of(batch: Batch) -> contextvars.Context:
    """A fresh context for a batch of many: its log lines, and its messages' X-Request-ID, name the batch."""
    context = contextvars.Context()
    context.run(structlog.contextvars.bind_contextvars, request_id=f"batch-{batch.batch_id}")
    return context


def _reservable(keys: frozenset[Hashable], unavailable: set[Hashable]) -> frozenset[Hashable]:
    """The keys a waiting item reserves: none above the lowest key it waits for.

    A reservation holds a key as a lock would. Prepares take accounts in account-id order (participants.plan),
    so a transfer holding one account waits only for higher ones; an item reserving a key above the one it
    waits for breaks that order. With two participants that closed a cycle until the prepare deadline:
    X holds 1 and waits for 2; V holds 2 and waits for 3; W, needing 1 and 3 at one participant, reserved 3
    while it waited for 1. An item waiting for nothing held (the lend path) reserves all its keys."""
    if not unavailable:
        return keys
    lowest = min(cast(Any, unavailable))
    return frozenset(key for key in keys if cast(Any, key) <= lowest)
