"""Pure rules for customers and logins: field validation, roles, and the shapes the service writes. No I/O."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from shared.errors import ValidationError

MAX_NAME_LENGTH = 200
MAX_ADDRESS_LENGTH = 500
# RFC 5321 limits: 64 octets of local part, 254 of whole address.
MAX_EMAIL_LENGTH = 254
MAX_EMAIL_LOCAL_LENGTH = 64
# E.164 numbers have at most 15 digits; 7 excludes obvious typos while keeping short national numbers.
MIN_PHONE_DIGITS = 7
MAX_PHONE_DIGITS = 15
MAX_PHONE_LENGTH = 32
MIN_USERNAME_LENGTH = 3
MAX_USERNAME_LENGTH = 64
MIN_PASSWORD_LENGTH = 8
# Bounds the work one login can cost the hasher; far above any real passphrase.
MAX_PASSWORD_LENGTH = 1024
MAX_REFRESH_TOKEN_LENGTH = 100  # secrets.token_urlsafe(32) is 43 characters

EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
PHONE_PATTERN = re.compile(r"\+?[0-9(][0-9 ().-]*")
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9._@-]+")

CONTACT_FIELDS = frozenset({"email", "phone"})
CUSTOMER_FIELDS = frozenset({"name", "address", "contact_info"})
NEW_CUSTOMER_FIELDS = CUSTOMER_FIELDS | {"customer_id", "username", "password"}
CREDENTIAL_FIELDS = frozenset({"username", "password"})


class Role(enum.StrEnum):
    """Roles a login can hold. Services authenticate with role "service" tokens and have no login."""

    CUSTOMER = "customer"
    TELLER = "teller"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class ContactInfo:
    email: str
    phone: str | None = None

    def to_json(self) -> dict[str, str]:
        contact = {"email": self.email}
        if self.phone is not None:
            contact["phone"] = self.phone
        return contact


@dataclass(frozen=True, slots=True)
class Login:
    """A login to create. The password is plain text here and hashed before it reaches the database."""

    username: str
    password: str = field(repr=False)
    role: Role
    customer_id: UUID | None

    def __post_init__(self) -> None:
        assert isinstance(self.role, Role), "a login role is a Role"
        assert (self.role is Role.CUSTOMER) == (self.customer_id is not None), "only customer logins own a customer"


@dataclass(frozen=True, slots=True)
class NewCustomer:
    customer_id: UUID
    name: str
    address: str
    contact_info: ContactInfo
    login: Login | None = None

    def __post_init__(self) -> None:
        assert self.login is None or self.login.customer_id == self.customer_id, "the login belongs to this customer"


@dataclass(frozen=True, slots=True)
class CustomerChanges:
    """A partial update: None means "leave as is"; contact_info, when given, replaces the whole object."""

    name: str | None = None
    address: str | None = None
    contact_info: ContactInfo | None = None

    def __post_init__(self) -> None:
        assert any(value is not None for value in (self.name, self.address, self.contact_info)), "a change changes"


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def parse_new_customer(body: dict[str, Any], customer_id: UUID) -> NewCustomer:
    _reject_unknown_fields(body, NEW_CUSTOMER_FIELDS)
    login = None
    if body.get("username") is not None or body.get("password") is not None:
        login = Login(
            username=parse_username(body.get("username")),
            password=parse_password(body.get("password")),
            role=Role.CUSTOMER,
            customer_id=customer_id,
        )
    return NewCustomer(
        customer_id=customer_id,
        name=parse_text(body.get("name"), "name", MAX_NAME_LENGTH),
        address=parse_text(body.get("address"), "address", MAX_ADDRESS_LENGTH),
        contact_info=parse_contact_info(body.get("contact_info")),
        login=login,
    )


def parse_customer_changes(body: dict[str, Any]) -> CustomerChanges:
    _reject_unknown_fields(body, CUSTOMER_FIELDS)
    given = {name: value for name, value in body.items() if value is not None}
    if not given:
        raise ValidationError(
            "give at least one of name, address, contact_info", details={"fields": sorted(CUSTOMER_FIELDS)}
        )
    return CustomerChanges(
        name=parse_text(given["name"], "name", MAX_NAME_LENGTH) if "name" in given else None,
        address=parse_text(given["address"], "address", MAX_ADDRESS_LENGTH) if "address" in given else None,
        contact_info=parse_contact_info(given["contact_info"]) if "contact_info" in given else None,
    )


def parse_credentials(body: dict[str, Any]) -> Credentials:
    """Login input: only shape and bounds. The password rules for new logins do not apply to old ones."""
    _reject_unknown_fields(body, CREDENTIAL_FIELDS)
    username = parse_text(body.get("username"), "username", MAX_USERNAME_LENGTH)
    password = body.get("password")
    if not isinstance(password, str) or not password:
        raise ValidationError("password must be a non-empty string", details={"field": "password"})
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(
            f"password must be at most {MAX_PASSWORD_LENGTH} characters", details={"field": "password"}
        )
    return Credentials(username=username, password=password)


def parse_text(value: Any, name: str, max_length: int) -> str:
    if value is None:
        raise ValidationError(f"{name} is required", details={"field": name})
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string", details={"field": name})
    if "\x00" in value:  # PostgreSQL text cannot hold it; query strings reach here without jsonio's check
        raise ValidationError(f"{name} must not contain the NUL character", details={"field": name})
    if len(value.strip()) > max_length:
        raise ValidationError(f"{name} must be at most {max_length} characters", details={"field": name})
    return value.strip()


def parse_contact_info(value: Any) -> ContactInfo:
    if value is None:
        raise ValidationError("contact_info is required", details={"field": "contact_info"})
    if not isinstance(value, dict):
        raise ValidationError("contact_info must be an object", details={"field": "contact_info"})
    _reject_unknown_fields(value, CONTACT_FIELDS, prefix="contact_info.")
    phone = value.get("phone")
    return ContactInfo(email=parse_email(value.get("email")), phone=None if phone is None else parse_phone(phone))


def parse_email(value: Any) -> str:
    email = parse_text(value, "email", MAX_EMAIL_LENGTH)
    local_part = email.rpartition("@")[0]
    if not EMAIL_PATTERN.fullmatch(email) or len(local_part) > MAX_EMAIL_LOCAL_LENGTH:
        raise ValidationError("email must look like name@example.com", details={"field": "email"})
    return email


def parse_phone(value: Any) -> str:
    phone = parse_text(value, "phone", MAX_PHONE_LENGTH)
    digit_count = sum(character.isdigit() for character in phone)
    if not PHONE_PATTERN.fullmatch(phone) or not MIN_PHONE_DIGITS <= digit_count <= MAX_PHONE_DIGITS:
        raise ValidationError(
            f"phone must hold {MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS} digits, "
            "optionally with a leading +, spaces, dots, dashes or parentheses",
            details={"field": "phone"},
        )
    return phone


def parse_username(value: Any) -> str:
    username = parse_text(value, "username", MAX_USERNAME_LENGTH)
    if len(username) < MIN_USERNAME_LENGTH or not USERNAME_PATTERN.fullmatch(username):
        raise ValidationError(
            f"username must be {MIN_USERNAME_LENGTH} to {MAX_USERNAME_LENGTH} letters, digits or . _ @ -",
            details={"field": "username"},
        )
    return username


def parse_password(value: Any) -> str:
    """A new password: checked for length only; surrounding spaces are kept, they are part of it."""
    if value is None:
        raise ValidationError("password is required", details={"field": "password"})
    if not isinstance(value, str):
        raise ValidationError("password must be a string", details={"field": "password"})
    if not MIN_PASSWORD_LENGTH <= len(value) <= MAX_PASSWORD_LENGTH:
        raise ValidationError(
            f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters", details={"field": "password"}
        )
    return value


def user_role(role: str, customer_id: UUID | None) -> Role:
    """A login row read back from the database: its role, checked against the same rule as the CHECK constraint."""
    parsed = Role(role)
    assert (parsed is Role.CUSTOMER) == (customer_id is not None), "only customer logins own a customer"
    return parsed


def _reject_unknown_fields(body: dict[str, Any], allowed: frozenset[str], *, prefix: str = "") -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(
            f"unknown fields: {', '.join(prefix + name for name in unknown)}",
            details={
                "unknown_fields": [prefix + name for name in unknown],
                "allowed_fields": sorted(prefix + name for name in allowed),
            },
        )


def parse_refresh_token(body: dict[str, Any]) -> str:
    _reject_unknown_fields(body, frozenset({"refresh_token"}))
    return parse_text(body.get("refresh_token"), "refresh_token", MAX_REFRESH_TOKEN_LENGTH)
