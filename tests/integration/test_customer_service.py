"""customer_service over HTTP against a real PostgreSQL database: every route, its roles and its errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient

from customer_service import demo_data
from customer_service.app import create_app
from customer_service.passwords import Passwords
from customer_service.service import LOGIN_FAILED_MESSAGE
from customer_service.settings import Settings
from shared.database import create_engine
from tests.conftest import TEST_KEYS, bearer, serve, token

# The cheapest argon2 settings: the tests check behaviour, not hashing cost.
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 8192}
MALFORMED_ID = "not-a-uuid"
STAFF = ("teller", "admin")


async def _no_accounts(request: web.Request) -> web.Response:
    return web.json_response({"success": True, "data": []})


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(customers_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TestClient]:
    """customer_service, with a fake accounts service (every customer has no accounts) for deletes to ask."""
    accounts = web.Application()
    accounts.router.add_get("/accounts/customer/{customer_id}", _no_accounts)
    async with serve(accounts) as fake_accounts:
        settings = Settings(
            database_url=customers_db_url,
            **TEST_KEYS,
            log_dir=str(tmp_path_factory.mktemp("customer-logs")),
            **FAST_ARGON2,
            accounts_service_url=str(fake_accounts.make_url("")),
        )
        async with serve(create_app(settings)) as test_client:
            yield test_client


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def unique_username() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def customer_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Dana Scully",
        "address": "1 Bureau Plaza, Washington DC",
        "contact_info": {"email": unique_email(), "phone": "+1 202 555 0143"},
    }
    body.update(overrides)
    return body


async def create_customer(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/customers", json=customer_body(**overrides), headers=bearer("teller"))
    assert response.status == 201, await response.text()
    return (await response.json())["data"]


async def login(client: TestClient, username: str, password: str) -> Any:
    return await client.post("/auth/login", json={"username": username, "password": password})


async def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    body = await response.json()
    assert response.status == status, body
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


async def assert_absent(client: TestClient, customer_id: str) -> None:
    response = await client.get(f"/customers/{customer_id}/exists", headers=bearer("service"))
    assert (await response.json())["data"]["exists"] is False


# --- health --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/health/ping", "/ready"])
async def test_health_routes_answer_without_a_token(client: TestClient, path: str) -> None:
    response = await client.get(path)
    body = await response.json()
    assert response.status == 200
    assert body["success"] is True
    assert body["data"]["service"] == "customer-service"


# --- login ---------------------------------------------------------------------------------------------------------


async def test_customer_login_gives_a_token_for_its_own_record(client: TestClient) -> None:
    username = unique_username()
    customer = await create_customer(client, username=username, password="correct horse")
    response = await login(client, username.upper(), "correct horse")
    body = await response.json()
    assert response.status == 200, body
    assert body["data"]["role"] == "customer"
    assert body["data"]["customer_id"] == customer["customer_id"]
    assert body["data"]["expires_at"]
    headers = {"Authorization": f"Bearer {body['data']['token']}"}
    own = await client.get(f"/customers/{customer['customer_id']}", headers=headers)
    assert own.status == 200


async def test_wrong_password_and_unknown_user_get_the_same_answer(client: TestClient) -> None:
    username = unique_username()
    await create_customer(client, username=username, password="correct horse")
    wrong_password = await assert_error(await login(client, username, "wrong horse!"), 401, "UNAUTHORIZED")
    unknown_user = await assert_error(await login(client, unique_username(), "correct horse"), 401, "UNAUTHORIZED")
    assert wrong_password == unknown_user == {"code": "UNAUTHORIZED", "message": LOGIN_FAILED_MESSAGE}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "alice"},
        {"password": "secret"},
        {"username": 7, "password": "secret"},
        {"username": "alice", "password": None},
        {"username": "alice", "password": ""},
        [],
        "alice",
    ],
)
async def test_login_rejects_a_malformed_body(client: TestClient, body: Any) -> None:
    await assert_error(await client.post("/auth/login", json=body), 400, "VALIDATION_ERROR")


async def test_login_rejects_text_that_is_not_json(client: TestClient) -> None:
    response = await client.post("/auth/login", data=b"{username", headers={"Content-Type": "application/json"})
    await assert_error(response, 400, "VALIDATION_ERROR")


async def test_demo_seed_is_idempotent_and_its_logins_work(client: TestClient, customers_db_url: str) -> None:
    engine = create_engine(customers_db_url, pool_size=1)
    passwords = Passwords(time_cost=1, memory_kib=8192)
    try:
        await demo_data.seed(engine, passwords)
        assert (await demo_data.seed(engine, passwords)).created == []
    finally:
        await engine.dispose()
    for demo_login in demo_data.DEMO_LOGINS:
        response = await login(client, demo_login.username, demo_login.password)
        data = (await response.json())["data"]
        assert data["role"] == demo_login.role.value
        expected_customer_id = str(demo_login.customer_id) if demo_login.customer_id else None
        assert data["customer_id"] == expected_customer_id


# --- read one ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "teller", "admin", "service"])
async def test_owner_staff_and_services_read_a_customer(client: TestClient, role: str) -> None:
    customer = await create_customer(client)
    customer_id = uuid.UUID(customer["customer_id"])
    headers = bearer("customer", customer_id) if role == "owner" else bearer(role)
    response = await client.get(f"/customers/{customer_id}", headers=headers)
    body = await response.json()
    assert response.status == 200
    assert body == {"success": True, "data": customer}
    assert set(body["data"]) == {"customer_id", "name", "address", "contact_info", "created_at", "updated_at"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dGVsbGVyOnRlbGxlcg=="},
        {"Authorization": f"Bearer {token('admin', secret='some-other-secret-0123456789abcdef')}"},
        {"Authorization": f"Bearer {token('admin', ttl_s=-60)}"},
    ],
)
async def test_reading_a_customer_needs_a_valid_token(client: TestClient, headers: dict[str, str]) -> None:
    customer = await create_customer(client)
    await assert_error(await client.get(f"/customers/{customer['customer_id']}", headers=headers), 401, "UNAUTHORIZED")


async def test_a_customer_cannot_read_another_customer(client: TestClient) -> None:
    customer = await create_customer(client)
    response = await client.get(f"/customers/{customer['customer_id']}", headers=bearer("customer", uuid.uuid4()))
    await assert_error(response, 403, "FORBIDDEN")


async def test_reading_a_missing_customer_is_404(client: TestClient) -> None:
    await assert_error(await client.get(f"/customers/{uuid.uuid4()}", headers=bearer("teller")), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", f"/customers/{MALFORMED_ID}", "teller"),
        ("PATCH", f"/customers/{MALFORMED_ID}", "teller"),
        ("DELETE", f"/customers/{MALFORMED_ID}", "admin"),
        ("GET", f"/customers/{MALFORMED_ID}/exists", "service"),
    ],
)
async def test_a_malformed_id_in_the_path_is_400(client: TestClient, method: str, path: str, role: str) -> None:
    response = await client.request(method, path, json={"name": "Fox Mulder"}, headers=bearer(role))
    error = await assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"] == {"field": "customer_id"}


# --- create --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", STAFF)
async def test_staff_create_a_customer(client: TestClient, role: str) -> None:
    body = customer_body(name="  Walter Skinner  ")
    response = await client.post("/customers", json=body, headers=bearer(role))
    answer = await response.json()
    assert response.status == 201, answer
    assert answer["message"] == "customer created"
    assert answer["data"]["name"] == "Walter Skinner"
    assert answer["data"]["contact_info"] == body["contact_info"]
    uuid.UUID(answer["data"]["customer_id"])


async def test_create_with_a_chosen_id_and_no_phone(client: TestClient) -> None:
    customer_id = str(uuid.uuid4())
    contact_info = {"email": unique_email()}
    customer = await create_customer(client, customer_id=customer_id, contact_info=contact_info)
    assert customer["customer_id"] == customer_id
    assert customer["contact_info"] == contact_info


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (bearer("customer", uuid.uuid4()), 403),
        (bearer("service"), 403),
    ],
)
async def test_only_staff_create_customers(client: TestClient, headers: dict[str, str], status: int) -> None:
    response = await client.post("/customers", json=customer_body(), headers=headers)
    assert response.status == status


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": None}, "name"),
        ({"address": ""}, "address"),
        ({"contact_info": None}, "contact_info"),
        ({"name": 42}, "name"),
        ({"address": ["1 Road"]}, "address"),
        ({"contact_info": "dana@example.com"}, "contact_info"),
        ({"contact_info": {"phone": "+1 202 555 0143"}}, "email"),
        ({"contact_info": {"email": "not-an-email"}}, "email"),
        ({"contact_info": {"email": "dana@example.com", "phone": "call me"}}, "phone"),
        ({"contact_info": {"email": "dana@example.com", "fax": "+1 202 555 0143"}}, None),
        ({"nickname": "Dee"}, None),
        ({"username": unique_username(), "password": "short"}, "password"),
        ({"username": unique_username()}, "password"),
        ({"password": "long enough"}, "username"),
        ({"username": "a b", "password": "long enough"}, "username"),
        ({"customer_id": "42"}, "customer_id"),
        ({"customer_id": 42}, "customer_id"),
    ],
)
async def test_create_rejects_invalid_input(client: TestClient, changes: dict[str, Any], field: str | None) -> None:
    body = customer_body(**changes)
    error = await assert_error(
        await client.post("/customers", json=body, headers=bearer("teller")), 400, "VALIDATION_ERROR"
    )
    if field is not None:
        assert error["details"] == {"field": field}


@pytest.mark.parametrize("body", [None, [], "text", 7])
async def test_create_rejects_a_body_that_is_not_an_object(client: TestClient, body: Any) -> None:
    response = await client.post("/customers", json=body, headers=bearer("teller"))
    await assert_error(response, 400, "VALIDATION_ERROR")


async def test_duplicate_email_is_409_and_writes_nothing(client: TestClient) -> None:
    existing = await create_customer(client)
    customer_id, username = str(uuid.uuid4()), unique_username()
    email = existing["contact_info"]["email"].upper()
    body = customer_body(
        customer_id=customer_id, username=username, password="long enough", contact_info={"email": email}
    )
    error = await assert_error(
        await client.post("/customers", json=body, headers=bearer("admin")), 409, "CONFLICT_ERROR"
    )
    assert error["details"] == {"field": "email"}
    await assert_absent(client, customer_id)
    await assert_error(await login(client, username, "long enough"), 401, "UNAUTHORIZED")


async def test_duplicate_username_is_409_and_writes_nothing(client: TestClient) -> None:
    username = unique_username()
    await create_customer(client, username=username, password="long enough")
    customer_id = str(uuid.uuid4())
    body = customer_body(customer_id=customer_id, username=username.upper(), password="long enough")
    error = await assert_error(
        await client.post("/customers", json=body, headers=bearer("teller")), 409, "CONFLICT_ERROR"
    )
    assert error["details"] == {"field": "username"}
    await assert_absent(client, customer_id)
    search = await client.get(
        "/customers/search/email", params={"email": body["contact_info"]["email"]}, headers=bearer("teller")
    )
    assert search.status == 404


async def test_duplicate_chosen_id_is_409(client: TestClient) -> None:
    existing = await create_customer(client)
    body = customer_body(customer_id=existing["customer_id"])
    error = await assert_error(
        await client.post("/customers", json=body, headers=bearer("teller")), 409, "CONFLICT_ERROR"
    )
    assert error["details"] == {"field": "customer_id"}


# --- update --------------------------------------------------------------------------------------------------------


async def test_the_owner_updates_name_and_address(client: TestClient) -> None:
    customer = await create_customer(client)
    response = await client.patch(
        f"/customers/{customer['customer_id']}",
        json={"name": "Dana K. Scully", "address": "2 Quantico Way"},
        headers=bearer("customer", uuid.UUID(customer["customer_id"])),
    )
    updated = (await response.json())["data"]
    assert response.status == 200
    assert (updated["name"], updated["address"]) == ("Dana K. Scully", "2 Quantico Way")
    assert updated["contact_info"] == customer["contact_info"]
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(customer["updated_at"])


async def test_staff_replace_the_contact_info(client: TestClient) -> None:
    customer = await create_customer(client)
    contact_info = {"email": unique_email()}
    response = await client.patch(
        f"/customers/{customer['customer_id']}", json={"contact_info": contact_info}, headers=bearer("admin")
    )
    updated = (await response.json())["data"]
    assert updated["contact_info"] == contact_info
    assert updated["name"] == customer["name"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": None},
        {"nickname": "Dee"},
        {"name": ""},
        {"address": 5},
        {"contact_info": {"phone": "+1 202 555 0143"}},
        {"contact_info": {"email": "nope"}},
    ],
)
async def test_update_rejects_invalid_input(client: TestClient, body: dict[str, Any]) -> None:
    customer = await create_customer(client)
    response = await client.patch(f"/customers/{customer['customer_id']}", json=body, headers=bearer("teller"))
    await assert_error(response, 400, "VALIDATION_ERROR")


async def test_update_to_a_taken_email_is_409_and_changes_nothing(client: TestClient) -> None:
    first, second = await create_customer(client), await create_customer(client)
    response = await client.patch(
        f"/customers/{second['customer_id']}",
        headers=bearer("teller"),
        json={"name": "Changed", "contact_info": first["contact_info"]},
    )
    await assert_error(response, 409, "CONFLICT_ERROR")
    unchanged = await client.get(f"/customers/{second['customer_id']}", headers=bearer("teller"))
    assert (await unchanged.json())["data"] == second


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (bearer("customer", uuid.uuid4()), 403),
        (bearer("service"), 403),
    ],
)
async def test_only_the_owner_and_staff_update(client: TestClient, headers: dict[str, str], status: int) -> None:
    customer = await create_customer(client)
    response = await client.patch(f"/customers/{customer['customer_id']}", json={"name": "X"}, headers=headers)
    assert response.status == status


async def test_updating_a_missing_customer_is_404(client: TestClient) -> None:
    response = await client.patch(f"/customers/{uuid.uuid4()}", json={"name": "Nobody"}, headers=bearer("teller"))
    await assert_error(response, 404, "NOT_FOUND")


# --- delete --------------------------------------------------------------------------------------------------------


async def test_admin_deletes_a_customer_and_its_login(client: TestClient) -> None:
    username = unique_username()
    customer = await create_customer(client, username=username, password="long enough")
    response = await client.delete(f"/customers/{customer['customer_id']}", headers=bearer("admin"))
    body = await response.json()
    assert response.status == 200
    assert body == {"success": True, "data": {"customer_id": customer["customer_id"]}, "message": "customer deleted"}
    await assert_error(
        await client.get(f"/customers/{customer['customer_id']}", headers=bearer("admin")), 404, "NOT_FOUND"
    )
    await assert_error(await login(client, username, "long enough"), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("role", ["teller", "customer", "service"])
async def test_only_admin_deletes(client: TestClient, role: str) -> None:
    customer = await create_customer(client)
    customer_id = uuid.UUID(customer["customer_id"])
    # The owning customer is refused too: deleting is an admin decision.
    headers = bearer(role, customer_id if role == "customer" else None)
    await assert_error(await client.delete(f"/customers/{customer_id}", headers=headers), 403, "FORBIDDEN")


async def test_deleting_a_missing_customer_is_404(client: TestClient) -> None:
    await assert_error(await client.delete(f"/customers/{uuid.uuid4()}", headers=bearer("admin")), 404, "NOT_FOUND")


# --- list ----------------------------------------------------------------------------------------------------------


async def test_list_pages_in_creation_order(client: TestClient) -> None:
    for _ in range(3):
        await create_customer(client)
    everything = await client.get("/customers", params={"limit": "4"}, headers=bearer("teller"))
    first_page = await client.get("/customers", params={"limit": "2"}, headers=bearer("admin"))
    second_page = await client.get("/customers", params={"limit": "2", "offset": "2"}, headers=bearer("admin"))
    page = (await everything.json())["data"]  # the original system's {customers, pagination}
    all_rows = page["customers"]
    assert len(all_rows) == 4
    assert page["pagination"] == {"limit": 4, "offset": 0, "count": 4}
    second = (await second_page.json())["data"]
    assert (await first_page.json())["data"]["customers"] + second["customers"] == all_rows
    assert second["pagination"] == {"limit": 2, "offset": 2, "count": 2}
    order = [(datetime.fromisoformat(row["created_at"]), uuid.UUID(row["customer_id"])) for row in all_rows]
    assert order == sorted(order)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "10000"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"offset": "-1"},
    ],
)
async def test_list_rejects_out_of_bounds_paging(client: TestClient, params: dict[str, str]) -> None:
    await assert_error(await client.get("/customers", params=params, headers=bearer("teller")), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(("headers", "status"), [({}, 401), (bearer("customer", uuid.uuid4()), 403)])
async def test_only_staff_list(client: TestClient, headers: dict[str, str], status: int) -> None:
    assert (await client.get("/customers", headers=headers)).status == status


# --- search by email -----------------------------------------------------------------------------------------------


async def test_search_by_email_ignores_case(client: TestClient) -> None:
    customer = await create_customer(client)
    email = customer["contact_info"]["email"].upper()
    response = await client.get("/customers/search/email", params={"email": email}, headers=bearer("teller"))
    assert (await response.json())["data"] == customer


async def test_search_for_an_unknown_email_is_404(client: TestClient) -> None:
    response = await client.get("/customers/search/email", params={"email": unique_email()}, headers=bearer("admin"))
    await assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize("params", [{}, {"email": ""}, {"email": "no-at-sign"}, {"email": "a@b"}])
async def test_search_needs_a_well_formed_email(client: TestClient, params: dict[str, str]) -> None:
    response = await client.get("/customers/search/email", params=params, headers=bearer("teller"))
    await assert_error(response, 400, "VALIDATION_ERROR")


async def test_customers_cannot_search(client: TestClient) -> None:
    response = await client.get(
        "/customers/search/email", params={"email": unique_email()}, headers=bearer("customer", uuid.uuid4())
    )
    await assert_error(response, 403, "FORBIDDEN")


# --- exists --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["service", "customer", "teller"])
async def test_exists_answers_for_any_valid_token(client: TestClient, role: str) -> None:
    customer = await create_customer(client)
    missing_id = str(uuid.uuid4())
    headers = bearer(role, uuid.uuid4() if role == "customer" else None)
    for customer_id, exists in ((customer["customer_id"], True), (missing_id, False)):
        response = await client.get(f"/customers/{customer_id}/exists", headers=headers)
        assert (await response.json())["data"] == {"customer_id": customer_id, "exists": exists}


async def test_exists_needs_a_token(client: TestClient) -> None:
    await assert_error(await client.get(f"/customers/{uuid.uuid4()}/exists"), 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/customers/{MALFORMED_ID}"),
        ("PATCH", f"/customers/{MALFORMED_ID}"),
        ("DELETE", f"/customers/{MALFORMED_ID}"),
        ("GET", f"/customers/{MALFORMED_ID}/exists"),
    ],
)
async def test_no_token_is_401_even_with_a_malformed_id(client: TestClient, method: str, path: str) -> None:
    await assert_error(await client.request(method, path, json={"name": "X"}), 401, "UNAUTHORIZED")
