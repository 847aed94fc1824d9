"""Inputs schemathesis found (tests/e2e/test_fuzz.py), kept as plain regression tests with their exact shape."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import coordinator_token, token
from tests.e2e.conftest import Api, fetch

pytestmark = pytest.mark.e2e


def new_customer(name: str, email: str = "fuzz@example.com") -> dict:
    return {
        "name": name,
        "address": "1 Test Street",
        "contact_info": {"email": email},
        "customer_id": str(uuid.uuid4()),
    }


@pytest.mark.parametrize("raw_name", [r'"nul\u0000inside"', r'"\udb6e lone surrogate"'])
async def test_text_postgresql_cannot_store_is_a_400_not_a_500(api: Api, raw_name: str) -> None:
    """Found: POST /customers with "\\u0000" (or an unpaired surrogate) in a string reached PostgreSQL -> 500."""
    customer_id = str(uuid.uuid4())
    raw = (
        '{"name": %s, "address": "1 Test Street", "contact_info": {"email": "fuzz@example.com"}, '
        '"customer_id": "%s"}' % (raw_name, customer_id)
    ).encode()
    answer = await api.call("POST", "customer_service", "/customers", raw=raw, auth=token("admin"))
    assert answer.status == 400, answer.body
    assert answer.error_code == "VALIDATION_ERROR"
    rows = await fetch(
        api.system, "customer_service", "SELECT 1 FROM customers WHERE customer_id = $1", uuid.UUID(customer_id)
    )
    assert rows == []


async def test_email_search_with_nul_in_the_query_is_a_400(api: Api) -> None:
    answer = await api.call(
        "GET", "customer_service", "/customers/search/email?email=a%00b@example.com", auth=token("admin")
    )
    assert answer.status == 400, answer.body


async def test_prepare_with_a_huge_negative_exponent_is_a_400_not_a_500(api: Api) -> None:
    """Found: a signed change "-874e58811191647207647" overflowed Decimal negation in parse_signed_money -> 500."""
    message = {
        "transaction_id": str(uuid.uuid4()),
        "changes": [{"account_id": str(uuid.uuid4()), "change": "-874e58811191647207647"}],
    }
    answer = await api.call("POST", "accounts_service", "/2pc/prepare", message, auth=coordinator_token())
    assert answer.status == 400, answer.body
    assert answer.error_code == "VALIDATION_ERROR"


@pytest.mark.parametrize("query", ["olderThanMinutes=", "olderThanMinutes=1_0", "olderThanMinutes=%205"])
async def test_pending_with_a_query_value_that_is_not_an_integer_is_a_400(api: Api, query: str) -> None:
    """Found: an empty olderThanMinutes was read as "use the default" although the document says integer."""
    answer = await api.call(
        "GET", "transactions_service", f"/transactions/monitoring/pending?{query}", auth=token("admin")
    )
    assert answer.status == 400, answer.body


async def test_a_body_the_document_rejects_is_a_400_naming_the_field(api: Api) -> None:
    """The requestBody schema is checked before the handler: its first error names the field."""
    body = {"source_account_id": str(uuid.uuid4()), "destination_account_id": "not-a-uuid", "amount": 5}
    answer = await api.call("POST", "transactions_service", "/transfers", body, auth=token("admin"))
    assert answer.status == 400, answer.body
    assert answer.body["error"]["details"]["field"] == "destination_account_id"


@pytest.mark.parametrize("service", ["customer_service", "accounts_service", "transactions_service"])
async def test_each_service_serves_its_document_and_docs_page(api: Api, service: str) -> None:
    document = await api.call("GET", service, "/openapi.json")
    assert document.status == 200
    assert document.body["openapi"] == "3.1.0"
    async with api.session.get(api.system.url(service) + "/docs") as response:
        page = await response.text()
        assert response.status == 200
        assert response.content_type == "text/html"
    assert all(path.replace("{", "").split("/")[1] in page for path in document.body["paths"])


async def test_a_request_line_too_long_for_the_parser_is_a_documented_400(api: Api) -> None:
    """Found: a query over 8190 bytes is refused by aiohttp's parser as 400 text/plain; the document says so."""
    path = "/transactions/status/committed?offset=" + "9" * 9000
    async with api.session.get(
        api.system.url("transactions_service") + path, headers={"Authorization": f"Bearer {token('admin')}"}
    ) as response:
        assert response.status == 400
        content_type = response.content_type
    document = await api.call("GET", "transactions_service", "/openapi.json")
    documented = document.body["paths"]["/transactions/status/{status}"]["get"]["responses"]["400"]["content"]
    assert content_type in documented
