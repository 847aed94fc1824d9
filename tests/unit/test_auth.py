"""shared.auth: tokens are HS256 only, must carry exp/iat/role, and name a known role."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from shared.auth import ALGORITHM, ROLES, issue_token, verify_token
from shared.errors import UnauthorizedError

SECRET = "unit-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789ABCDEF"
OTHER_SECRET = "another-secret-0123456789-abcdefghijklmnopq"


def now_s() -> int:
    return int(datetime.now(UTC).timestamp())


def signed(payload: dict, *, secret: str = SECRET, algorithm: str = ALGORITHM) -> str:
    return jwt.encode(payload, secret, algorithm=algorithm)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_issue_then_verify_round_trips(role):
    customer_id = uuid.uuid4() if role == "customer" else None
    token, expires_at = issue_token(SECRET, role=role, customer_id=customer_id, ttl_s=60)
    principal = verify_token(SECRET, token)
    assert principal.role == role
    assert principal.customer_id == customer_id
    assert principal.is_staff == (role in ("teller", "admin"))
    assert expires_at > datetime.now(UTC)
    assert expires_at <= datetime.now(UTC) + timedelta(seconds=61)


def test_subject_defaults_to_customer_then_role_and_can_be_set():
    customer_id = uuid.uuid4()
    assert verify_token(SECRET, issue_token(SECRET, role="customer", customer_id=customer_id)[0]).subject == str(
        customer_id
    )
    assert verify_token(SECRET, issue_token(SECRET, role="service")[0]).subject == "service"
    assert (
        verify_token(SECRET, issue_token(SECRET, role="service", subject="transactions")[0]).subject == "transactions"
    )


def test_token_carries_the_pinned_algorithm_and_claims():
    token, _ = issue_token(SECRET, role="teller", ttl_s=120)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert {"role", "iat", "exp", "sub", "customer_id"} <= claims.keys()
    assert claims["exp"] - claims["iat"] == 120


def test_expired_token_is_unauthorized():
    issued = datetime.now(UTC) - timedelta(hours=2)
    token, _ = issue_token(SECRET, role="customer", customer_id=uuid.uuid4(), ttl_s=60, now=issued)
    with pytest.raises(UnauthorizedError) as caught:
        verify_token(SECRET, token)
    assert caught.value.message == "token expired"
    assert caught.value.status == 401


def test_wrong_secret_is_unauthorized():
    token, _ = issue_token(OTHER_SECRET, role="admin")
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, token)


def test_tampered_payload_is_unauthorized():
    token, _ = issue_token(SECRET, role="customer", customer_id=uuid.uuid4())
    header, payload, signature = token.split(".")
    forged_payload = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"customer"', b'"admin"')
    ).decode()
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, f"{header}.{forged_payload}.{signature}")


def test_alg_none_token_is_rejected():
    payload = {"role": "admin", "sub": "attacker", "iat": now_s(), "exp": now_s() + 600, "customer_id": None}
    unsigned = jwt.encode(payload, None, algorithm="none")
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, unsigned)
    # The same token with a signature segment glued on is still not HS256.
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, unsigned + "c2lnbmF0dXJl")


def test_other_hmac_algorithm_is_rejected_even_with_the_right_secret():
    payload = {"role": "admin", "iat": now_s(), "exp": now_s() + 600}
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, signed(payload, algorithm="HS512"))


@pytest.mark.parametrize("role", ["root", "superuser", "", None, 1, "Admin"])
def test_unknown_role_is_rejected(role):
    payload = {"role": role, "iat": now_s(), "exp": now_s() + 600}
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, signed(payload))


@pytest.mark.parametrize("missing", ["exp", "iat", "role"])
def test_required_claims_must_be_present(missing):
    payload = {"role": "admin", "iat": now_s(), "exp": now_s() + 600}
    del payload[missing]
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, signed(payload))


def test_malformed_customer_id_is_rejected():
    payload = {"role": "customer", "customer_id": "not-a-uuid", "iat": now_s(), "exp": now_s() + 600}
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, signed(payload))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x", "e30.e30.e30"])
def test_garbage_is_rejected(garbage):
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, garbage)


def test_issuing_an_unknown_role_is_a_programmer_error():
    with pytest.raises(AssertionError):
        issue_token(SECRET, role="root")


def original_token(customer_id: str, role: str, *, secret: str = SECRET) -> str:
    """A token minted the original system's way: HS256 {customer_id, role} with iat and a 24 h exp, no sub."""
    return signed({"customer_id": customer_id, "role": role, "iat": now_s(), "exp": now_s() + 24 * 3600}, secret=secret)


@pytest.mark.parametrize(
    "name, role",
    [("admin-001", "admin"), ("teller-001", "teller"), ("system-admin", "admin"), ("service-coordinator", "admin")],
)
def test_a_staff_name_that_is_not_a_uuid_is_the_subject(name, role):
    principal = verify_token(SECRET, original_token(name, role))
    assert (principal.role, principal.customer_id, principal.subject) == (role, None, name)


def test_an_original_customer_token_keeps_its_customer_id_as_subject():
    alice = "550e8400-e29b-41d4-a716-446655440001"
    principal = verify_token(SECRET, original_token(alice, "customer"))
    assert (principal.customer_id, principal.subject) == (uuid.UUID(alice), alice)


@pytest.mark.parametrize("name", ["admin-001", "", "  "])
def test_a_customer_token_still_needs_a_uuid(name):
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, original_token(name, "customer"))


@pytest.mark.parametrize("name", [7, ["admin-001"], {"id": 1}, ""])
def test_a_staff_customer_id_must_be_a_non_empty_string(name):
    payload = {"customer_id": name, "role": "admin", "iat": now_s(), "exp": now_s() + 600}
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, signed(payload))


def test_a_service_token_with_a_name_for_customer_id_is_refused():
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, original_token("service-coordinator", "service"))


@pytest.mark.parametrize(
    "claims",
    [
        {"role": ["admin"]},
        {"role": {"admin": 1}},
        {"role": 7},
        {"sub": ["x"]},
        {"sub": {"a": 1}},
        {"customer_id": ["550e8400-e29b-41d4-a716-446655440001"]},
        {"customer_id": 5},
        {"aud": {"a": 1}},
        {"aud": [["accounts-service"]]},
    ],
)
def test_a_validly_signed_token_with_a_claim_of_the_wrong_type_is_401(claims):
    """Found: a signed token whose role was a list raised TypeError (unhashable) -> 500."""
    payload = {"role": "admin", "sub": "admin", "iat": now_s(), "exp": now_s() + 60, **claims}
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, signed(payload), audience="accounts-service")


def test_customer_service_never_holds_the_coordinator_key():
    """customer_service faces the internet: a compromise there must not be able to drive the participant."""
    from customer_service.app import create_app
    from customer_service.settings import Settings
    from shared.callers import TOKEN_KEYS_KEY

    app = create_app(
        Settings(
            database_url="postgresql://nobody@127.0.0.1:1/none",
            jwt_secret=SECRET,
            service_token_secret=OTHER_SECRET,
            coordinator_token_secret="a-coordinator-secret-given-by-mistake-0123456789",
        )
    )
    assert app[TOKEN_KEYS_KEY].coordinator_secret == ""


def test_a_coordinator_token_is_verified_only_with_the_coordinator_key():
    from shared.auth import TokenKeys

    coordinator_keys = TokenKeys(secret=SECRET, coordinator_secret=OTHER_SECRET)
    minted = issue_token(coordinator_keys, role="service", subject="transactions-service", ttl_s=60, coordinator=True)[
        0
    ]
    assert verify_token(coordinator_keys, minted).coordinator is True
    with pytest.raises(UnauthorizedError):
        verify_token(SECRET, minted)  # a service without the coordinator key refuses it
    with pytest.raises(UnauthorizedError):  # the coordinator key never vouches for a user
        verify_token(
            coordinator_keys,
            jwt.encode(
                {"role": "admin", "iat": now_s(), "exp": now_s() + 60},
                OTHER_SECRET,
                algorithm=ALGORITHM,
                headers={"kid": "coordinator"},
            ),
        )
    assert verify_token(coordinator_keys, issue_token(SECRET, role="service", ttl_s=60)[0]).coordinator is False
