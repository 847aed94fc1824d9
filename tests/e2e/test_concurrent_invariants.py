"""Random concurrent transfers, some bound to fail, against the real services; then PROTOCOL.md invariants 1-5."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.invariants import check_invariants
from tests.e2e.conftest import ALICE, Api

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

ACCOUNT_COUNT = 4
OPENING_BALANCE = Decimal("100")

transfer_plans = st.lists(
    st.tuples(
        st.integers(0, ACCOUNT_COUNT - 1),
        st.integers(0, ACCOUNT_COUNT - 1),
        st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("150"), places=4),
    ),
    min_size=1,
    max_size=24,
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=transfer_plans)
async def test_concurrent_transfers_keep_every_invariant(api: Api, plan) -> None:
    accounts = [await api.open_account(ALICE, OPENING_BALANCE) for _ in range(ACCOUNT_COUNT)]
    transfers = [
        (accounts[source], accounts[destination], amount)
        for source, destination, amount in plan
        if source != destination
    ]

    answers = await asyncio.gather(
        *(api.transfer(source, destination, amount) for source, destination, amount in transfers)
    )

    assert all(answer.status in (200, 409) for answer in answers), [
        a.body for a in answers if a.status not in (200, 409)
    ]
    told = {}
    for answer in answers:
        transfer = answer.data if answer.status == 200 else answer.body["error"]["details"]
        told[transfer["transaction_id"]] = transfer["status"]
    report = await check_invariants(
        api.system.database_url("accounts_service"),
        api.system.database_url("transactions_service"),
        accounts,
        expected_total=OPENING_BALANCE * ACCOUNT_COUNT,
        client_outcomes={UUID(key): value for key, value in told.items()},
    )
    assert report.violations == []
    assert report.transfers_checked == len(transfers)
