"""Bearer JWTs, payload {customer_id, role, sub, iat, exp}; algorithm pinned per key, exp required.

Two signing modes for user tokens (JWT_ALGORITHM):
- HS256 (the default, kept for compatibility): every service signs and verifies with JWT_SECRET.
- EdDSA: only customer_service holds the Ed25519 private key and mints user tokens; the others verify
  with the public key, so a compromised accounts service cannot mint an admin token.
Service-to-service tokens are always HS256 with SERVICE_TOKEN_SECRET (in both modes: a user key never
signs a service token, nor the service key a user token; header kid=service), carry `aud` = the called
service's name and live minutes; a receiving service takes a role=service token only with its own
audience, and in EdDSA mode an HS256 token is taken only as a service token.
Every secret is checked when the app is built (check_secrets): missing, shared, shorter than 32 bytes or
a known placeholder is refused, the last two allowed only with DEV_MODE=true (`banking-cli up`).
The participant's /2pc/* calls take only the coordinator's tokens: HS256 with COORDINATOR_TOKEN_SECRET
(header kid=coordinator), held by transactions_service (which signs) and accounts_service (which verifies)
and by no other service, with subject transactions-service.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import jwt
import structlog

from shared.errors import UnauthorizedError

ALGORITHM = "HS256"
ASYMMETRIC_ALGORITHM = "EdDSA"
ALGORITHMS = (ALGORITHM, ASYMMETRIC_ALGORITHM)
ROLES = frozenset({"customer", "teller", "admin", "service"})
STAFF_ROLES = ("teller", "admin")
# Access tokens are short: a stolen one is good for minutes; POST /auth/refresh renews them (7 days).
DEFAULT_USER_TOKEN_TTL_S = 15 * 60
DEFAULT_SERVICE_TOKEN_TTL_S = 120
VERIFIED_CACHE_MAX = 10_000
# Each service's name: the audience of the service tokens sent to it.
CUSTOMER_SERVICE_NAME = "customer-service"
ACCOUNTS_SERVICE_NAME = "accounts-service"
TRANSACTIONS_SERVICE_NAME = "transactions-service"
SERVICE_NAMES = (CUSTOMER_SERVICE_NAME, ACCOUNTS_SERVICE_NAME, TRANSACTIONS_SERVICE_NAME)
# The `kid` header of tokens signed with the coordinator key (COORDINATOR_TOKEN_SECRET): it picks that key.
COORDINATOR_KEY_ID = "coordinator"
# The `kid` of service tokens (SERVICE_TOKEN_SECRET): in HS256 mode it tells them from user tokens (JWT_SECRET).
SERVICE_KEY_ID = "service"
MIN_SECRET_BYTES = 32
# Published or placeholder values: whoever has read this repository or its ancestors can sign with them.
KNOWN_SECRETS = frozenset(
    {
        "dev-only-insecure-jwt-secret-change-me",  # the old development default
        "your-super-secret-jwt-key",
        "your-secret-key",
        "secret",
        "changeme",
        "change-me",
        "replace_me",
        "local-only-jwt-secret-not-for-production",
        "local-only-coordinator-secret-not-for-production",
        "local-only-service-secret-not-for-production",
    }
)


class KeyConfigurationError(ValueError):
    """The token keys given to a service do not fit its JWT_ALGORITHM."""


@dataclass(frozen=True, slots=True)
class TokenKeys:
    """What one service signs and verifies tokens with. `secret` alone is the HS256 mode."""

    secret: str
    algorithm: str = ALGORITHM
    private_key_pem: str = ""  # EdDSA: customer_service only
    public_key_pem: str = ""  # EdDSA: every service
    service_secret: str = ""  # HS256 key of service tokens; empty means `secret`
    coordinator_secret: str = ""  # HS256 key of the coordinator's /2pc calls: transactions and accounts only

    def __post_init__(self) -> None:
        assert self.algorithm in ALGORITHMS, f"unknown JWT algorithm {self.algorithm}"

    @property
    def service_key(self) -> str:
        return self.service_secret or self.secret

    @property
    def asymmetric(self) -> bool:
        return self.algorithm == ASYMMETRIC_ALGORITHM


def check_secrets(named: dict[str, str], *, dev_mode: bool) -> list[str]:
    """Refuse missing, shared, short or known secrets (KeyConfigurationError); the warnings DEV_MODE let pass.

    `named` maps each setting a service needs to its value. Missing and shared keys are refused even in
    DEV_MODE: user tokens and service tokens never share a key."""
    missing = [name for name, value in named.items() if not value]
    if missing:
        raise KeyConfigurationError(
            f"{', '.join(missing)} must be set: a random secret of at least {MIN_SECRET_BYTES} bytes ({GENERATE_HINT})"
        )
    names_by_value: dict[str, list[str]] = {}
    for name, value in named.items():
        names_by_value.setdefault(value, []).append(name)
    shared = [names for names in names_by_value.values() if len(names) > 1]
    if shared:
        raise KeyConfigurationError(f"{' and '.join(shared[0])} must differ: each key signs one kind of token")
    weak = [
        f"{name} is a known placeholder" if _known(value) else f"{name} is shorter than {MIN_SECRET_BYTES} bytes"
        for name, value in named.items()
        if _known(value) or len(value.encode()) < MIN_SECRET_BYTES
    ]
    if weak and not dev_mode:
        raise KeyConfigurationError(
            f"{'; '.join(weak)}: anyone could sign tokens with it. Set a random secret "
            f"({GENERATE_HINT}), or DEV_MODE=true for local development only"
        )
    return weak


GENERATE_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _known(value: str) -> bool:
    return value.strip().lower() in KNOWN_SECRETS or "replace_me" in value.lower()


def load_token_keys(
    *,
    algorithm: str,
    secret: str,
    public_key_file: str = "",
    private_key_file: str = "",
    service_token_secret: str = "",
    coordinator_token_secret: str = "",
    coordinator_key_holder: bool = False,
    dev_mode: bool = False,
) -> TokenKeys:
    """The keys a service's settings name, checked (check_secrets) and read from their files (in
    create_app, never at import). Only a `coordinator_key_holder` (transactions, accounts) gets that key."""
    if algorithm not in ALGORITHMS:
        raise KeyConfigurationError(f"JWT_ALGORITHM must be one of {ALGORITHMS}, got {algorithm!r}")
    named = {"SERVICE_TOKEN_SECRET": service_token_secret}
    if algorithm == ALGORITHM:
        named["JWT_SECRET"] = secret  # EdDSA: user tokens are signed with the private key instead
    if coordinator_key_holder:
        named["COORDINATOR_TOKEN_SECRET"] = coordinator_token_secret
    else:
        coordinator_token_secret = ""
    for warning in check_secrets(named, dev_mode=dev_mode):
        structlog.get_logger().warning("weak_secret_allowed_in_dev_mode", details={"reason": warning})
    if algorithm == ALGORITHM:
        return TokenKeys(
            secret=secret, service_secret=service_token_secret, coordinator_secret=coordinator_token_secret
        )
    if not public_key_file:
        raise KeyConfigurationError("JWT_ALGORITHM=EdDSA needs JWT_PUBLIC_KEY_FILE")
    private_key = Path(private_key_file).read_text() if private_key_file else ""
    return TokenKeys(
        secret=secret,
        algorithm=algorithm,
        private_key_pem=private_key,
        public_key_pem=Path(public_key_file).read_text(),
        service_secret=service_token_secret,
        coordinator_secret=coordinator_token_secret,
    )


def _keys(keys: str | TokenKeys) -> TokenKeys:
    return keys if isinstance(keys, TokenKeys) else TokenKeys(secret=keys)


@dataclass(frozen=True, slots=True)
class Principal:
    role: str
    customer_id: UUID | None
    subject: str
    coordinator: bool = False  # signed with the coordinator key (only transactions_service holds it to sign)
    session_id: str | None = None  # the login session (claim `sid`) that logout and refresh reuse revoke
    issued_at: float = 0.0

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


class RevocationCheck:
    """The hook every service asks after a token verifies: is it revoked? (shared/revocation.py feeds one.)"""

    def is_revoked(self, principal: Principal) -> bool:
        raise NotImplementedError


_verified: dict[tuple[TokenKeys, str | None, str], tuple[Principal, float]] = {}


def issue_token(
    keys: str | TokenKeys,
    *,
    role: str,
    customer_id: UUID | None = None,
    subject: str | None = None,
    ttl_s: int = DEFAULT_USER_TOKEN_TTL_S,
    now: datetime | None = None,
    audience: str | list[str] | None = None,
    coordinator: bool = False,
    session_id: str | None = None,
) -> tuple[str, datetime]:
    """A signed token: a service token with the service secret (or, from the coordinator, the coordinator
    key), a user token with the mode's user key."""
    assert role in ROLES, f"unknown role {role}"
    assert not coordinator or role == "service", "only a service token is a coordinator token"
    keys = _keys(keys)
    issued_at = now or datetime.now(UTC)
    expires_at = issued_at + timedelta(seconds=ttl_s)
    payload: dict[str, object] = {
        "customer_id": str(customer_id) if customer_id else None,
        "role": role,
        "sub": subject or (str(customer_id) if customer_id else role),
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    if audience is not None:
        payload["aud"] = audience
    if session_id is not None:
        payload["sid"] = session_id
    if coordinator:
        if not keys.coordinator_secret:
            raise KeyConfigurationError("only the coordinator holds COORDINATOR_TOKEN_SECRET")
        return jwt.encode(
            payload, keys.coordinator_secret, algorithm=ALGORITHM, headers={"kid": COORDINATOR_KEY_ID}
        ), expires_at
    if role == "service":
        return jwt.encode(payload, keys.service_key, algorithm=ALGORITHM, headers={"kid": SERVICE_KEY_ID}), expires_at
    if not keys.asymmetric:
        return jwt.encode(payload, keys.secret, algorithm=ALGORITHM), expires_at
    if not keys.private_key_pem:
        raise KeyConfigurationError("only the holder of the private key (customer_service) mints user tokens")
    return jwt.encode(payload, keys.private_key_pem, algorithm=ASYMMETRIC_ALGORITHM), expires_at


def verify_token(keys: str | TokenKeys, token: str, *, audience: str | None = None) -> Principal:
    """The token's principal; a token verified before is answered from a small cache until it expires.

    With `audience` (a service's own name), a role=service token must name it in `aud`."""
    keys = _keys(keys)
    cache_key = (keys, audience, token)
    cached = _verified.get(cache_key)
    if cached is not None and cached[1] > time.time():
        return cached[0]
    principal, expires_at = _verify(keys, token, audience)
    if len(_verified) >= VERIFIED_CACHE_MAX:
        _verified.clear()  # bounded: a flood of distinct tokens costs verification, never memory
    _verified[cache_key] = (principal, expires_at)
    return principal


def _verify(keys: TokenKeys, token: str, audience: str | None) -> tuple[Principal, float]:
    try:
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        coordinator = header.get("kid") == COORDINATOR_KEY_ID
        by_service_key = algorithm == ALGORITHM and (keys.asymmetric or header.get("kid") == SERVICE_KEY_ID)
        # The header only picks which of our own keys to try; each key is pinned to one algorithm.
        if coordinator:
            if algorithm != ALGORITHM or not keys.coordinator_secret:
                raise jwt.InvalidKeyError("no coordinator key here")
            key = keys.coordinator_secret
        elif algorithm == ASYMMETRIC_ALGORITHM and keys.asymmetric:
            key = keys.public_key_pem
        elif algorithm == ALGORITHM:
            key = keys.service_key if by_service_key else keys.secret
        else:
            raise jwt.InvalidAlgorithmError("algorithm not accepted")
        payload = jwt.decode(
            token, key, algorithms=[algorithm], options={"require": ["exp", "iat", "role"], "verify_aud": False}
        )
    except jwt.ExpiredSignatureError:
        raise UnauthorizedError("token expired") from None
    except jwt.PyJWTError:
        raise UnauthorizedError("invalid token") from None
    _check_claim_types(payload)
    role = payload.get("role")
    if role not in ROLES:
        raise UnauthorizedError("invalid token role")
    if by_service_key != (role == "service") and not coordinator:
        raise UnauthorizedError("invalid token")  # the service key vouches for services only, the user key for users
    if role == "service" and audience is not None and not _names_audience(payload.get("aud"), audience):
        raise UnauthorizedError("service token not meant for this service")
    if coordinator and role != "service":
        raise UnauthorizedError("invalid token")  # the coordinator key vouches for the coordinator only
    customer_id, subject = _identity(payload, role, accept_staff_names=not keys.asymmetric)
    principal = Principal(
        role=role,
        customer_id=customer_id,
        subject=subject,
        coordinator=coordinator,
        session_id=payload.get("sid"),
        issued_at=float(payload["iat"]),
    )
    return principal, float(payload["exp"])


# A validly signed token is still input: each claim we read must have the type we read it as.
CLAIM_TYPES: dict[str, tuple[type, ...]] = {
    "role": (str,),
    "sub": (str,),
    "customer_id": (str, type(None)),
    "aud": (str, list),
    "sid": (str,),
}


def _check_claim_types(payload: dict) -> None:
    for claim, types in CLAIM_TYPES.items():
        if claim in payload and not isinstance(payload[claim], types):
            raise UnauthorizedError(f"invalid token claim {claim}")
    audience = payload.get("aud")
    if isinstance(audience, list) and not all(isinstance(name, str) for name in audience):
        raise UnauthorizedError("invalid token claim aud")


def _names_audience(claim: object, audience: str) -> bool:
    """`aud` is one name or a list of names (RFC 7519 4.1.3)."""
    if isinstance(claim, str):
        return claim == audience
    return isinstance(claim, list) and audience in claim


def _identity(payload: dict, role: str, *, accept_staff_names: bool) -> tuple[UUID | None, str]:
    """The token's customer id and subject. A customer's `customer_id` must be a UUID.

    The original system's clients mint HS256 `{customer_id, role}` tokens (no `sub`) whose staff ids
    are names such as "admin-001": in HS256 mode such a name is the staff caller's subject, with no
    customer id. EdDSA tokens come only from our customer_service, so there a non-UUID is refused.
    """
    raw = payload.get("customer_id")
    subject = payload.get("sub")
    if raw is None:
        return None, str(subject or role)
    try:
        return UUID(str(raw)), str(subject or raw)
    except ValueError:
        if role in STAFF_ROLES and accept_staff_names and isinstance(raw, str) and raw.strip():
            return None, str(subject or raw)
        raise UnauthorizedError("invalid token subject") from None
