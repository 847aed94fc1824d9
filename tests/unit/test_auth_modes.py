"""Token modes: HS256 with one shared secret, or EdDSA where only customer_service can mint user tokens;
service tokens are HS256 with the service secret, scoped to one audience, and never vouch for a user."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.auth import (
    ACCOUNTS_SERVICE_NAME,
    CUSTOMER_SERVICE_NAME,
    KeyConfigurationError,
    TokenKeys,
    issue_token,
    load_token_keys,
    verify_token,
)
from shared.errors import UnauthorizedError

SECRET = "unit-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789ABCDEF"
SERVICE_SECRET = "service-only-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def key_pair() -> tuple[str, str]:
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


PRIVATE_PEM, PUBLIC_PEM = key_pair()
OTHER_PRIVATE_PEM, _ = key_pair()
# customer_service holds the private key; accounts and transactions only the public one.
SIGNER = TokenKeys(
    secret=SECRET,
    algorithm="EdDSA",
    private_key_pem=PRIVATE_PEM,
    public_key_pem=PUBLIC_PEM,
    service_secret=SERVICE_SECRET,
)
VERIFIER = TokenKeys(secret=SECRET, algorithm="EdDSA", public_key_pem=PUBLIC_PEM, service_secret=SERVICE_SECRET)


def unsigned(payload: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def test_eddsa_user_tokens_are_minted_by_the_signer_and_verified_with_the_public_key() -> None:
    customer_id = uuid.uuid4()
    token, _ = issue_token(SIGNER, role="customer", customer_id=customer_id)
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    principal = verify_token(VERIFIER, token, audience=ACCOUNTS_SERVICE_NAME)
    assert (principal.role, principal.customer_id) == ("customer", customer_id)


def test_a_service_without_the_private_key_cannot_mint_a_user_token() -> None:
    with pytest.raises(KeyConfigurationError):
        issue_token(VERIFIER, role="admin")


def test_the_service_secret_never_vouches_for_a_user() -> None:
    """What a compromised accounts service holds (public key, service secret) makes no admin token."""
    forged = jwt.encode({"role": "admin", "sub": "mallory", "iat": 1, "exp": 2**40}, SERVICE_SECRET, algorithm="HS256")
    with pytest.raises(UnauthorizedError):
        verify_token(VERIFIER, forged, audience=ACCOUNTS_SERVICE_NAME)
    # Nor does the old shared JWT_SECRET once the system runs EdDSA.
    with pytest.raises(UnauthorizedError):
        verify_token(VERIFIER, issue_token(SECRET, role="admin")[0], audience=ACCOUNTS_SERVICE_NAME)


def test_a_public_key_used_as_an_hmac_secret_is_refused() -> None:
    """The classic confusion attack: HS256 'signed' with the public key text."""
    forged = jwt.encode({"role": "admin", "iat": 1, "exp": 2**40}, "k" * 32, algorithm="HS256")
    with pytest.raises(UnauthorizedError):
        verify_token(VERIFIER, forged)
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode({"role": "admin"}, PUBLIC_PEM, algorithm="HS256")  # PyJWT refuses to make one at all


def test_a_token_signed_with_another_private_key_is_refused() -> None:
    other = TokenKeys(
        secret=SECRET,
        algorithm="EdDSA",
        private_key_pem=OTHER_PRIVATE_PEM,
        public_key_pem=PUBLIC_PEM,
        service_secret=SERVICE_SECRET,
    )
    with pytest.raises(UnauthorizedError):
        verify_token(VERIFIER, issue_token(other, role="admin")[0])


@pytest.mark.parametrize("keys", [SECRET, VERIFIER], ids=["HS256", "EdDSA"])
def test_alg_none_is_refused_in_every_mode(keys) -> None:
    with pytest.raises(UnauthorizedError):
        verify_token(keys, unsigned({"role": "admin", "iat": 1, "exp": 2**40}))


@pytest.mark.parametrize("signer, verifier", [(SECRET, SECRET), (SIGNER, VERIFIER)], ids=["HS256", "EdDSA"])
def test_service_tokens_are_accepted_only_by_their_audience(signer, verifier) -> None:
    token, _ = issue_token(
        signer, role="service", subject="transactions-service", audience=ACCOUNTS_SERVICE_NAME, ttl_s=60
    )
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert verify_token(verifier, token, audience=ACCOUNTS_SERVICE_NAME).role == "service"
    with pytest.raises(UnauthorizedError):
        verify_token(verifier, token, audience=CUSTOMER_SERVICE_NAME)
    unscoped, _ = issue_token(signer, role="service", ttl_s=60)
    with pytest.raises(UnauthorizedError):
        verify_token(verifier, unscoped, audience=ACCOUNTS_SERVICE_NAME)


def test_user_tokens_carry_no_audience_and_pass_everywhere() -> None:
    token, _ = issue_token(SIGNER, role="teller")
    assert "aud" not in jwt.decode(token, options={"verify_signature": False})
    for audience in (CUSTOMER_SERVICE_NAME, ACCOUNTS_SERVICE_NAME):
        assert verify_token(VERIFIER, token, audience=audience).role == "teller"


def test_eddsa_mode_is_loaded_from_key_files(tmp_path: Path) -> None:
    (tmp_path / "private.pem").write_text(PRIVATE_PEM)
    (tmp_path / "public.pem").write_text(PUBLIC_PEM)
    signer = load_token_keys(
        algorithm="EdDSA",
        secret=SECRET,
        public_key_file=str(tmp_path / "public.pem"),
        private_key_file=str(tmp_path / "private.pem"),
        service_token_secret=SERVICE_SECRET,
    )
    verifier = load_token_keys(
        algorithm="EdDSA",
        secret=SECRET,
        public_key_file=str(tmp_path / "public.pem"),
        service_token_secret=SERVICE_SECRET,
    )
    assert verify_token(verifier, issue_token(signer, role="admin")[0]).role == "admin"


@pytest.mark.parametrize(
    "arguments",
    [
        {"algorithm": "RS512"},
        {"algorithm": "EdDSA", "service_token_secret": SERVICE_SECRET},
        {"algorithm": "EdDSA", "public_key_file": "/nonexistent.pem"},
    ],
    ids=["unknown algorithm", "no public key", "no service secret"],
)
def test_incomplete_key_settings_are_refused(arguments) -> None:
    with pytest.raises(KeyConfigurationError):
        load_token_keys(secret=SECRET, **arguments)


def test_hs256_stays_the_default() -> None:
    keys = load_token_keys(algorithm="HS256", secret=SECRET, service_token_secret=SERVICE_SECRET)
    assert keys == TokenKeys(secret=SECRET, service_secret=SERVICE_SECRET)
    assert jwt.get_unverified_header(issue_token(keys, role="admin")[0])["alg"] == "HS256"


def test_eddsa_mode_stays_strict_about_original_style_tokens() -> None:
    """The original system's HS256 {customer_id: "admin-001", role} token works only in HS256 mode."""
    payload = {"customer_id": "admin-001", "role": "admin", "iat": 1, "exp": 2**40}
    with pytest.raises(UnauthorizedError):
        verify_token(VERIFIER, jwt.encode(payload, SECRET, algorithm="HS256"))
    with pytest.raises(UnauthorizedError):  # even signed with the right private key, a staff id is a UUID here
        verify_token(VERIFIER, jwt.encode(payload, PRIVATE_PEM, algorithm="EdDSA"))
    assert verify_token(SECRET, jwt.encode(payload, SECRET, algorithm="HS256")).subject == "admin-001"


# --- secrets a service refuses to start with ----------------------------------------------------------------

STRONG = "a-random-enough-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
COORDINATOR_SECRET = "coordinator-only-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def hs256_keys(**overrides: str | bool) -> TokenKeys:
    arguments = {
        "algorithm": "HS256",
        "secret": STRONG,
        "service_token_secret": SERVICE_SECRET,
        "coordinator_token_secret": COORDINATOR_SECRET,
        "coordinator_key_holder": True,
        **overrides,
    }
    return load_token_keys(**arguments)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"secret": ""}, "JWT_SECRET must be set"),
        ({"service_token_secret": ""}, "SERVICE_TOKEN_SECRET must be set"),
        ({"coordinator_token_secret": ""}, "COORDINATOR_TOKEN_SECRET must be set"),
        ({"secret": "dev-only-insecure-jwt-secret-change-me"}, "JWT_SECRET is a known placeholder"),
        ({"secret": "REPLACE_ME"}, "JWT_SECRET is a known placeholder"),
        ({"secret": "your-super-secret-jwt-key"}, "JWT_SECRET is a known placeholder"),
        ({"service_token_secret": "x" * 31}, "SERVICE_TOKEN_SECRET is shorter than 32 bytes"),
        ({"service_token_secret": STRONG}, "must differ"),
        ({"coordinator_token_secret": SERVICE_SECRET}, "must differ"),
    ],
    ids=[
        "no JWT_SECRET",
        "no service secret",
        "no coordinator secret",
        "old dev default",
        "REPLACE_ME",
        "the original's",
        "31 bytes",
        "user and service share",
        "service and coordinator share",
    ],
)
def test_a_missing_known_short_or_shared_secret_is_refused_with_a_clear_message(overrides, words) -> None:
    with pytest.raises(KeyConfigurationError) as caught:
        hs256_keys(**overrides)
    assert words in str(caught.value)


@pytest.mark.parametrize("weak", ["REPLACE_ME", "short", "dev-only-insecure-jwt-secret-change-me"])
def test_dev_mode_lets_a_weak_secret_through_but_never_a_missing_or_shared_one(weak) -> None:
    assert hs256_keys(secret=weak, dev_mode=True).secret == weak
    with pytest.raises(KeyConfigurationError):
        hs256_keys(secret="", dev_mode=True)
    with pytest.raises(KeyConfigurationError):
        hs256_keys(secret=SERVICE_SECRET, dev_mode=True)


def test_eddsa_mode_needs_no_jwt_secret_but_a_service_secret(tmp_path) -> None:
    (tmp_path / "public.pem").write_text(PUBLIC_PEM)
    keys = load_token_keys(
        algorithm="EdDSA", secret="", public_key_file=str(tmp_path / "public.pem"), service_token_secret=SERVICE_SECRET
    )
    assert keys.service_secret == SERVICE_SECRET


def test_in_hs256_mode_the_user_key_and_the_service_key_never_vouch_for_each_other() -> None:
    keys = hs256_keys()
    service_token = issue_token(keys, role="service", audience=ACCOUNTS_SERVICE_NAME, ttl_s=60)[0]
    assert verify_token(keys, service_token, audience=ACCOUNTS_SERVICE_NAME).role == "service"
    as_user_key = jwt.encode({"role": "service", "iat": 1, "exp": 2**40, "aud": ACCOUNTS_SERVICE_NAME}, STRONG, "HS256")
    with pytest.raises(UnauthorizedError):
        verify_token(keys, as_user_key, audience=ACCOUNTS_SERVICE_NAME)
    admin_by_service_key = jwt.encode(
        {"role": "admin", "iat": 1, "exp": 2**40}, SERVICE_SECRET, "HS256", headers={"kid": "service"}
    )
    with pytest.raises(UnauthorizedError):
        verify_token(keys, admin_by_service_key)
