"""Deleting a customer: refused (409) while their accounts hold money, and the id is never given out again."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests.conftest import token
from tests.e2e.conftest import Api

pytestmark = pytest.mark.asyncio(loop_scope="session")


def new_customer(customer_id: str) -> dict:
    return {
        "customer_id": customer_id,
        "name": "Short Lived",
        "address": "1 Gone Street",
        "contact_info": {"email": f"gone-{uuid.uuid4().hex[:10]}@example.com"},
    }


async def create(api: Api, customer_id: str) -> int:
    return (
        await api.call("POST", "customer_service", "/customers", new_customer(customer_id), auth=token("teller"))
    ).status


async def delete(api: Api, customer_id: str) -> tuple[int, dict]:
    answer = await api.call("DELETE", "customer_service", f"/customers/{customer_id}", auth=token("admin"))
    return answer.status, answer.body


async def test_a_customer_whose_accounts_hold_money_cannot_be_deleted(api: Api) -> None:
    """Found: a deleted customer kept their money in orphaned accounts."""
    customer_id = str(uuid.uuid4())
    assert await create(api, customer_id) == 201
    account_id = await api.open_account(uuid.UUID(customer_id), Decimal("25"))
    status, body = await delete(api, customer_id)
    assert status == 409, body
    assert str(account_id) in str(body["error"]["details"])
    still = await api.call("GET", "customer_service", f"/customers/{customer_id}", auth=token("admin"))
    assert still.status == 200
    emptied = await api.call(
        "PATCH", "accounts_service", f"/accounts/{account_id}/balance", {"balance": 0}, auth=token("admin")
    )
    assert emptied.status == 200, emptied.body
    assert (await delete(api, customer_id))[0] == 200


async def test_a_deleted_customers_id_is_never_reused(api: Api) -> None:
    """Found: staff could create a new customer with a deleted one's id and so re-own its accounts."""
    customer_id = str(uuid.uuid4())
    assert await create(api, customer_id) == 201
    assert (await delete(api, customer_id))[0] == 200
    again = await api.call("POST", "customer_service", "/customers", new_customer(customer_id), auth=token("admin"))
    assert again.status == 409, again.body
    assert again.body["error"]["details"] == {"field": "customer_id"}
