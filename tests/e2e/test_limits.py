"""Hostile input against the real services: body size, strict JSON, amount and page bounds, security headers,
CORS only for an allowed origin, and no password, secret or token in any log line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from customer_service.app import create_app
from customer_service.settings import Settings
from harness.system import SERVICES, LocalSystem
from shared.money import DEFAULT_MAX_AMOUNT
from shared.params import MAX_BODY_BYTES
from shared.security import SECURITY_HEADERS
from tests.conftest import TEST_JWT_SECRET, TEST_KEYS, serve, token
from tests.e2e.conftest import ALICE, ALICE_MAIN, BOB_MAIN, Api, until_logged

pytestmark = pytest.mark.asyncio(loop_scope="session")

ALLOWED_ORIGIN = "https://app.bank.example"
OTHER_ORIGIN = "https://evil.example"


def transfer_text(amount: str) -> str:
    return '{"source_account_id": "%s", "destination_account_id": "%s", "amount": %s}' % (ALICE_MAIN, BOB_MAIN, amount)


def nested(depth: int) -> str:
    return '{"source_account_id": ' + "[" * depth + "1" + "]" * depth + "}"


async def post_transfer(api: Api, raw: str | bytes) -> int:
    answer = await api.call(
        "POST",
        "transactions_service",
        "/transfers",
        raw=raw.encode() if isinstance(raw, str) else raw,
        auth=token("teller"),
    )
    return answer.status


async def test_a_body_over_the_limit_is_413(api: Api) -> None:
    padding = "x" * (MAX_BODY_BYTES + 1)
    assert await post_transfer(api, '{"padding": "%s"}' % padding) == 413
    answer = await api.call(
        "POST", "customer_service", "/auth/login", raw=('{"username": "alice", "password": "%s"}' % padding).encode()
    )
    assert answer.status == 413


@pytest.mark.parametrize(
    "raw",
    [
        '{"source_account_id": "a", "source_account_id": "b", "destination_account_id": "c", "amount": 1}',
        transfer_text("NaN"),
        transfer_text("Infinity"),
        transfer_text("-Infinity"),
        transfer_text("1e999999"),
        nested(40),
        '{"amount": 1',
    ],
    ids=["duplicate keys", "NaN", "Infinity", "-Infinity", "huge number", "40-level nesting", "truncated"],
)
async def test_malformed_json_is_400_and_moves_nothing(api: Api, raw: str) -> None:
    before = (await api.balance(ALICE_MAIN), await api.balance(BOB_MAIN))
    assert await post_transfer(api, raw) == 400
    assert (await api.balance(ALICE_MAIN), await api.balance(BOB_MAIN)) == before


async def test_an_amount_above_the_bound_is_400(api: Api) -> None:
    answer = await api.transfer(ALICE_MAIN, BOB_MAIN, DEFAULT_MAX_AMOUNT + 1)
    assert answer.status == 400
    assert answer.error_code == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "service, path",
    [
        ("customer_service", "/customers"),
        ("accounts_service", f"/accounts/{ALICE_MAIN}/ledger"),
        ("transactions_service", f"/transfers/history/{ALICE_MAIN}"),
        ("transactions_service", "/transactions/status/committed"),
    ],
)
@pytest.mark.parametrize("query", ["limit=0", "limit=10000", "limit=-1", "offset=-1", "limit=ten"])
async def test_pagination_out_of_bounds_is_400(api: Api, service: str, path: str, query: str) -> None:
    answer = await api.call("GET", service, f"{path}?{query}", auth=token("admin"))
    assert answer.status == 400, answer.body


@pytest.mark.parametrize("service", [spec.name for spec in SERVICES])
@pytest.mark.parametrize(
    "method, path, auth",
    [
        ("GET", "/health/ping", False),
        ("GET", "/no/such/route", False),
        ("GET", "/metrics", False),
        ("DELETE", "/health/ping", False),
        ("GET", "/customers/search/email", True),
    ],
    ids=["ok", "404", "metrics", "405", "authorized"],
)
async def test_security_headers_on_every_answer(api: Api, service: str, method: str, path: str, auth: bool) -> None:
    headers = {"Authorization": f"Bearer {token('admin')}"} if auth else {}
    async with api.session.request(method, api.system.url(service) + path, headers=headers) as response:
        await response.read()
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (name, response.status)
        assert "Access-Control-Allow-Origin" not in response.headers  # no CORS unless configured


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def cors_client(customers_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TestClient]:
    settings = Settings(
        database_url=customers_db_url,
        **TEST_KEYS,
        log_dir=str(tmp_path_factory.mktemp("cors-logs")),
        cors_allowed_origins=(ALLOWED_ORIGIN,),
        argon2_time_cost=1,
        argon2_memory_kib=8192,
    )
    async with serve(create_app(settings)) as client:
        yield client


async def test_cors_preflight_is_answered_for_an_allowed_origin(cors_client: TestClient) -> None:
    response = await cors_client.options(
        "/customers",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert response.headers["Vary"] == "Origin"


async def test_cors_headers_on_answers_to_an_allowed_origin_even_errors(cors_client: TestClient) -> None:
    for path, status in ((f"/customers/{ALICE}", 401), ("/health/ping", 200)):
        response = await cors_client.get(path, headers={"Origin": ALLOWED_ORIGIN})
        assert response.status == status
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_no_cors_headers_for_another_origin(cors_client: TestClient) -> None:
    preflight = await cors_client.options(
        "/customers", headers={"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status != 204
    assert "Access-Control-Allow-Origin" not in preflight.headers
    answer = await cors_client.get("/health/ping", headers={"Origin": OTHER_ORIGIN})
    assert answer.status == 200
    assert "Access-Control-Allow-Origin" not in answer.headers


async def test_no_password_secret_or_token_in_any_log(api: Api, system: LocalSystem) -> None:
    alice_token = await api.login("alice", "alice123")
    admin_token = await api.login("admin", "admin123")
    assert (
        await api.call("POST", "customer_service", "/auth/login", {"username": "alice", "password": "alice-wrong-123"})
    ).status == 401
    assert (await api.call("GET", "accounts_service", f"/accounts/customer/{ALICE}", auth=alice_token)).status == 200
    assert (await api.call("GET", "customer_service", "/customers", auth=admin_token)).status == 200
    transfer = await api.transfer(ALICE_MAIN, BOB_MAIN, "0.01", auth=alice_token)
    assert transfer.status == 200, transfer.body
    assert (
        await api.call(
            "GET", "transactions_service", f"/transactions/{transfer.data['transaction_id']}", auth=admin_token
        )
    ).status == 200
    assert (
        await api.call("GET", "accounts_service", "/accounts/not-a-uuid", auth=alice_token + "tampered")
    ).status == 401
    secrets = {
        "alice's password": "alice123",
        "admin's password": "admin123",
        "a wrong password": "alice-wrong-123",
        "the JWT secret": TEST_JWT_SECRET,
        "alice's token": alice_token,
        "admin's token": admin_token,
        "a token signature": alice_token.rsplit(".", 1)[1],
    }
    log_files = [path for path in system.log_dir.rglob("*") if path.is_file()]
    assert log_files, "the services write logs"
    assert await until_logged(lambda: _mentioned(transfer.data["transaction_id"], log_files))
    for path in log_files:
        text = path.read_text(errors="replace")
        for name, secret in secrets.items():
            assert secret not in text, f"{name} appears in {path.name}"


@pytest.mark.parametrize("service", [spec.name for spec in SERVICES])
async def test_a_human_page_gets_a_policy_that_still_loads_nothing_foreign(api: Api, service: str) -> None:
    async with api.session.get(api.system.url(service) + "/docs") as response:
        await response.read()
        if response.status != 200 or response.content_type != "text/html":
            pytest.skip("this service serves no HTML page")
        policy = response.headers["Content-Security-Policy"]
        assert policy.startswith("default-src 'none'")
        assert "script-src" not in policy
        assert response.headers["X-Frame-Options"] == "DENY"


def _mentioned(text: str, log_files: list[Path]) -> bool:
    return any(text in path.read_text(errors="replace") for path in log_files)
