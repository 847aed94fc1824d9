"""customer_service's pure rules: field validation, roles, and the password hasher. No database, no HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_service import domain
from customer_service.domain import ContactInfo, CustomerChanges, Login, Role
from customer_service.passwords import Passwords
from shared.errors import ValidationError

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
# On a fresh checkout hypothesis builds its unicode table (cached in .hypothesis/, which git ignores) during
# the first text draw; that one-off second trips the too_slow check. The generation itself is cheap.
FRESH_CHECKOUT_TOLERANT = settings(suppress_health_check=[HealthCheck.too_slow])


def valid_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": " Ada Lovelace ",
        "address": "12 St James's Square, London",
        "contact_info": {"email": "ada@example.com", "phone": "+44 20 7946 0958"},
    }
    body.update(overrides)
    return body


def test_a_valid_body_becomes_a_trimmed_new_customer_with_its_login() -> None:
    customer_id = uuid.uuid4()
    customer = domain.parse_new_customer(valid_body(username="ada", password="analytical"), customer_id)
    assert customer.name == "Ada Lovelace"
    assert customer.contact_info == ContactInfo("ada@example.com", "+44 20 7946 0958")
    assert customer.login == Login("ada", "analytical", Role.CUSTOMER, customer_id)
    assert "analytical" not in repr(customer)


@pytest.mark.parametrize("email", ["a@b.co", "first.last+tag@sub.example.org", "x_y@example.museum"])
def test_plausible_emails_pass(email: str) -> None:
    assert domain.parse_email(f"  {email} ") == email


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "a@b",
        "a@@b.com",
        "a b@c.com",
        "a@b..com",
        "@b.com",
        "a@.com",
        "a@b.com.",
        "x" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
        7,
        None,
        ["a@b.com"],
    ],
)
def test_implausible_emails_fail(email: Any) -> None:
    with pytest.raises(ValidationError):
        domain.parse_email(email)


@pytest.mark.parametrize(
    ("phone", "valid"),
    [
        ("+44 20 7946 0958", True),
        ("(202) 555-0143", True),
        ("555.0143.12", True),
        ("12345", False),
        ("+1234567890123456", False),
        ("call me", False),
        ("++44 20 7946 0958", False),
    ],
)
def test_phone_numbers(phone: str, valid: bool) -> None:
    if valid:
        assert domain.parse_phone(phone) == phone
    else:
        with pytest.raises(ValidationError):
            domain.parse_phone(phone)


@pytest.mark.parametrize(
    "body",
    [
        valid_body(nickname="Ada"),
        valid_body(contact_info={"email": "ada@example.com", "fax": "1234567"}),
        valid_body(password="analytical"),
        valid_body(username="ada", password="short"),
    ],
)
def test_unknown_fields_and_incomplete_logins_are_rejected(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        domain.parse_new_customer(body, uuid.uuid4())


def test_changes_need_at_least_one_known_field() -> None:
    for body in ({}, {"name": None}, {"phone": "+44 20 7946 0958"}):
        with pytest.raises(ValidationError):
            domain.parse_customer_changes(body)
    assert domain.parse_customer_changes({"address": " 1 Road "}) == CustomerChanges(address="1 Road")


def test_credentials_are_checked_for_shape_not_for_new_password_rules() -> None:
    assert domain.parse_credentials({"username": "bob", "password": "bob123"}).password == "bob123"
    for body in (
        {"username": "bob"},
        {"username": "bob", "password": 123456},
        {"username": "bob", "password": "x" * (domain.MAX_PASSWORD_LENGTH + 1)},
    ):
        with pytest.raises(ValidationError):
            domain.parse_credentials(body)


def test_a_login_row_role_must_match_its_customer() -> None:
    assert domain.user_role("teller", None) is Role.TELLER
    assert domain.user_role("customer", uuid.uuid4()) is Role.CUSTOMER
    with pytest.raises(AssertionError):
        domain.user_role("admin", uuid.uuid4())
    with pytest.raises(ValueError):
        domain.user_role("service", None)


@FRESH_CHECKOUT_TOLERANT
@given(body=st.dictionaries(st.sampled_from(sorted(domain.NEW_CUSTOMER_FIELDS | {"extra"})), JSON_VALUES))
def test_any_json_body_is_parsed_or_refused_with_a_validation_error(body: dict[str, Any]) -> None:
    """Bad input must be a 400, never an exception the middleware would turn into a 500."""
    body.pop("customer_id", None)  # the handler parses customer_id before the domain sees the body
    for parse in (lambda: domain.parse_new_customer(body, uuid.uuid4()), lambda: domain.parse_customer_changes(body)):
        try:
            parse()
        except ValidationError:
            pass


@FRESH_CHECKOUT_TOLERANT
@given(contact_info=JSON_VALUES)
def test_any_contact_info_is_parsed_or_refused_with_a_validation_error(contact_info: Any) -> None:
    try:
        domain.parse_contact_info(contact_info)
    except ValidationError:
        pass


async def test_passwords_verify_only_the_right_password_of_a_known_user() -> None:
    passwords = Passwords(time_cost=1, memory_kib=8192)
    password_hash = await passwords.hash("correct horse")
    assert "correct horse" not in password_hash
    assert await passwords.verify(password_hash, "correct horse")
    assert not await passwords.verify(password_hash, "wrong horse")
    assert not await passwords.verify(None, "not-a-password-of-anyone")
    assert not await passwords.verify("not-an-argon2-hash", "correct horse")
