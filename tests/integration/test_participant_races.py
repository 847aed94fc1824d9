"""The single (unbatched) prepare under concurrent prepares, commits and aborts on the same two accounts.

The prepare is one statement that locks its account rows and logs them only if every leg is free and
stays non-negative. Under concurrency it must vote from the same row versions it then writes: a CHECK
constraint refusing its write would mean it checked one version and updated another.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import participant
from accounts_service.domain import Leg
from shared.database import create_engine
from tests.integration.test_participant import balances, open_accounts

pytestmark = pytest.mark.asyncio(loop_scope="session")

WORKERS = 12
RACE_S = 5.0  # long enough for the race to come up several times (about 2 per second here)
OPENING = Decimal("1000")


@pytest_asyncio.fixture(loop_scope="session")
async def engine(accounts_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(accounts_db_url, pool_size=WORKERS, max_overflow=0)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _move_money(engine: AsyncEngine, accounts: list, until: float, seed: int, outcomes: Counter) -> None:
    randomness = random.Random(seed)
    while time.monotonic() < until:
        source, destination = randomness.sample(accounts, 2)
        amount = Decimal(randomness.randint(1, 60000)) / 100
        legs = [Leg(source, -amount), Leg(destination, amount)]
        transaction_id = uuid.uuid4()
        try:
            vote = await participant.prepare(engine, transaction_id, legs, busy_wait_s=0.05)
        except Exception as error:
            outcomes[f"prepare raised {type(error).__name__}: {str(error).splitlines()[0][:120]}"] += 1
            await participant.abort(engine, transaction_id, legs)
            continue
        if vote.yes and randomness.random() < 0.8:
            await participant.commit(engine, transaction_id)
            outcomes["committed"] += 1
        else:
            await participant.abort(engine, transaction_id, legs)
            outcomes["yes, aborted" if vote.yes else f"no: {vote.reason.value if vote.reason else ''}"] += 1


async def test_concurrent_single_prepares_vote_from_the_rows_they_write(engine):
    accounts = await open_accounts(engine, OPENING, OPENING, OPENING)
    outcomes: Counter = Counter()
    until = time.monotonic() + RACE_S
    await asyncio.gather(*(_move_money(engine, accounts, until, seed, outcomes) for seed in range(WORKERS)))

    raised = {outcome: count for outcome, count in outcomes.items() if outcome.startswith("prepare raised")}
    assert raised == {}, outcomes
    assert outcomes["committed"] > 0, outcomes
    assert sum(await balances(engine, *accounts)) == OPENING * len(accounts)
