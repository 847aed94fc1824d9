"""ReleaseSignals: a released account goes to its waiters one at a time, oldest first (FIFO), never to all at once."""

from __future__ import annotations

import asyncio
import uuid

from accounts_service.participant import ReleaseSignals

SHORT_S = 0.05
LONG_S = 5.0


async def _woken(signals: ReleaseSignals, tickets: list, timeout_s: float = SHORT_S) -> list[bool]:
    return list(await asyncio.gather(*(signals.wait(ticket, timeout_s) for ticket in tickets)))


async def test_a_release_wakes_only_the_oldest_waiter():
    signals = ReleaseSignals()
    account = uuid.uuid4()
    tickets = [signals.join([account]) for _ in range(3)]
    signals.released([account])
    assert await _woken(signals, tickets) == [True, False, False]


async def test_a_turn_that_is_not_used_passes_to_the_next_waiter_in_order():
    signals = ReleaseSignals()
    account = uuid.uuid4()
    first, second, third = (signals.join([account]) for _ in range(3))
    signals.released([account])
    assert await signals.wait(first, LONG_S)
    signals.pass_on(first, kept=())  # the oldest could not take the lock: the next one tries
    assert await _woken(signals, [second, third]) == [True, False]
    signals.pass_on(second, kept=())
    assert await _woken(signals, [third]) == [True]


async def test_a_turn_that_is_used_wakes_nobody_else():
    signals = ReleaseSignals()
    account = uuid.uuid4()
    first, second = signals.join([account]), signals.join([account])
    signals.released([account])
    assert await signals.wait(first, LONG_S)
    signals.pass_on(first, kept=[account])  # it took the lock: the next waits for the next release
    signals.leave(first)
    assert await _woken(signals, [second]) == [False]
    signals.released([account])
    assert await _woken(signals, [second]) == [True]
    signals.leave(second)
    assert signals.waiting(account) == 0


async def test_a_turn_handed_over_while_the_waiter_was_busy_trying_is_not_lost():
    signals = ReleaseSignals()
    account = uuid.uuid4()
    ticket = signals.join([account])
    signals.released([account])  # arrives before the waiter is back in wait()
    assert await signals.wait(ticket, LONG_S)
    assert not await signals.wait(ticket, SHORT_S), "one release, one turn"


async def test_the_release_of_one_account_reaches_a_waiter_on_several():
    signals = ReleaseSignals()
    shared, other = uuid.uuid4(), uuid.uuid4()
    both = signals.join([shared, other])
    only_other = signals.join([other])
    signals.released([other])
    assert await _woken(signals, [both, only_other]) == [True, False]
    signals.pass_on(both, kept=[shared])  # it locked nothing on `other`: that turn goes on
    assert await _woken(signals, [only_other]) == [True]


async def test_a_waiter_that_leaves_with_a_turn_it_never_took_hands_it_on():
    signals = ReleaseSignals()
    account = uuid.uuid4()
    first, second = signals.join([account]), signals.join([account])
    signals.released([account])  # handed to the oldest, which stops (cancelled, say) before it takes it
    signals.leave(first)
    assert await _woken(signals, [second]) == [True]


async def test_the_queue_of_one_account_is_bounded():
    signals = ReleaseSignals(waiters_per_account_max=2)
    account = uuid.uuid4()
    tickets = [signals.join([account]) for _ in range(3)]
    assert signals.waiting(account) == 2
    for ticket in tickets:
        signals.leave(ticket)
    assert signals.waiting(account) == 0
