"""Staff and money: a teller's opening deposit is capped (more needs an admin), and every staff action that
creates or changes money or customers lands in each service's append-only audit log, which admins read."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import pytest

from accounts_service.settings import DEFAULT_TELLER_OPENING_DEPOSIT_MAX
from harness.system import LocalSystem
from tests.conftest import token
from tests.e2e.conftest import ALICE, ALICE_MAIN, BOB_MAIN, Api, fetch

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def open_account(api: Api, role: str, balance: Decimal) -> tuple[int, dict]:
    answer = await api.call(
        "POST",
        "accounts_service",
        "/accounts",
        {"customer_id": str(ALICE), "initial_balance": str(balance)},
        auth=token(role),
    )
    return answer.status, answer.body


async def test_a_tellers_opening_deposit_is_capped_and_an_admin_may_go_above(api: Api, system: LocalSystem) -> None:
    """Found: a teller could open an account with up to 1e9, creating money."""
    cap = DEFAULT_TELLER_OPENING_DEPOSIT_MAX
    assert cap == 10_000
    before = len(await fetch(system, "accounts_service", "SELECT 1 FROM accounts WHERE customer_id = $1", ALICE))
    assert (await open_account(api, "teller", cap))[0] == 201
    status, body = await open_account(api, "teller", cap + Decimal("0.01"))
    assert status == 403 and body["error"]["code"] == "FORBIDDEN", body
    assert "admin" in body["error"]["message"]
    assert (await open_account(api, "admin", cap * 5))[0] == 201
    after = len(await fetch(system, "accounts_service", "SELECT 1 FROM accounts WHERE customer_id = $1", ALICE))
    assert after == before + 2  # the refused one wrote nothing


async def audit_of(api: Api, service: str, role: str = "admin") -> tuple[int, list[dict]]:
    answer = await api.call("GET", service, "/audit?limit=500", auth=token(role))
    return answer.status, answer.data or []


async def test_every_staff_action_on_money_or_customers_is_audited(api: Api) -> None:
    """Found: nothing recorded who created money or moved it from someone else's account."""
    email = f"audit-{uuid.uuid4().hex[:10]}@example.com"
    created = await api.call(
        "POST",
        "customer_service",
        "/customers",
        {"name": "Audited Person", "address": "1 Ledger Lane", "contact_info": {"email": email}},
        auth=token("teller"),
    )
    assert created.status == 201, created.body
    customer_id = created.data["customer_id"]
    opened = await api.call(
        "POST",
        "accounts_service",
        "/accounts",
        {"customer_id": customer_id, "initial_balance": "123.45"},
        auth=token("teller"),
    )
    assert opened.status == 201, opened.body
    moved = await api.transfer(ALICE_MAIN, BOB_MAIN, "0.02", auth=token("teller"))
    assert moved.status == 200, moved.body
    refused = await open_account(api, "teller", Decimal(10**6))
    assert refused[0] == 403
    by_customer = await api.transfer(ALICE_MAIN, BOB_MAIN, "0.01", auth=token("customer", ALICE))
    assert by_customer.status == 200

    customers = (await audit_of(api, "customer_service"))[1]
    accounts = (await audit_of(api, "accounts_service"))[1]
    transfers = (await audit_of(api, "transactions_service"))[1]
    assert any(entry["action"] == "customer.create" and entry["status"] == 201 for entry in customers)
    opening = next(entry for entry in accounts if entry["details"].get("customer_id") == customer_id)
    assert opening["action"] == "account.open" and opening["actor"] == "teller" and opening["role"] == "teller"
    assert opening["details"]["initial_balance"] == "123.45" and opening["address"] == "127.0.0.1"
    assert any(entry["details"].get("initial_balance") == str(10**6) and entry["status"] == 403 for entry in accounts)
    assert any(entry["action"] == "transfer.create" and entry["details"]["amount"] == "0.02" for entry in transfers)
    assert all(entry["role"] in ("teller", "admin") for entry in customers + accounts + transfers)  # staff only
    assert not any(entry["details"].get("amount") == "0.01" for entry in transfers)


@pytest.mark.parametrize("service", ["customer_service", "accounts_service", "transactions_service"])
async def test_the_audit_log_is_for_admins_and_append_only(api: Api, system: LocalSystem, service: str) -> None:
    assert (await audit_of(api, service, "teller"))[0] == 403
    assert (await audit_of(api, service, "admin"))[0] == 200
    connection = await asyncpg.connect(system.database_url(service))
    try:
        for statement in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(asyncpg.RaiseError):
                await connection.execute(statement)
    finally:
        await connection.close()
