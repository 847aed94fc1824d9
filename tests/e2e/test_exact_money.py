"""Money stays exact over the wire and through every service: no float anywhere on the way."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import token
from tests.e2e.conftest import ALICE, BOB, Api

pytestmark = pytest.mark.e2e


async def test_a_tenth_and_two_tenths_move_exactly_three_tenths(api: Api) -> None:
    """In binary floating point 0.1 + 0.2 is 0.30000000000000004: here it is 0.3, to the last digit."""
    source = await api.open_account(ALICE, Decimal("1.0000"))
    destination = await api.open_account(BOB, Decimal("0"))
    for amount in (Decimal("0.1"), Decimal("0.2")):
        answer = await api.transfer(source, destination, amount)
        assert answer.status == 200, answer.body
        assert answer.data["amount"] == amount
    assert await api.balance(source) == Decimal("0.7")
    assert await api.balance(destination) == Decimal("0.3")


async def test_an_answer_writes_money_as_an_exact_json_number(api: Api) -> None:
    account = await api.open_account(ALICE, Decimal("9876.0123"))
    async with api.session.get(
        api.system.url("accounts_service") + f"/accounts/{account}",
        headers={"Authorization": f"Bearer {token('admin')}"},
    ) as response:
        text = await response.text()
        assert response.content_type == "application/json"
        assert response.charset == "utf-8"
    assert '"balance":9876.0123' in text


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "1e400", "1E+400", "0.1e-400"])
async def test_numbers_that_are_no_amount_are_a_400_as_numbers_too(api: Api, amount: str) -> None:
    raw = '{"source_account_id": "%s", "destination_account_id": "%s", "amount": %s}' % (
        await api.open_account(ALICE, Decimal("5")),
        await api.open_account(BOB, Decimal("0")),
        amount,
    )
    answer = await api.call("POST", "transactions_service", "/transfers", raw=raw.encode(), auth=token("teller"))
    assert answer.status == 400, answer.body
    assert answer.error_code == "VALIDATION_ERROR"
