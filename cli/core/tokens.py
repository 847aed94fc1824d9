"""The demo identities and tokens minted for them locally from JWT_SECRET (for `banking-cli tokens` and the demos)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from cli.core.config import Config
from cli.core.errors import InputError
from shared.demo_ids import ALICE, BOB, CAROL

DEFAULT_TOKEN_TTL_S = 3600


@dataclass(frozen=True)
class DemoIdentity:
    username: str
    role: str
    customer_id: UUID | None


DEMO_IDENTITIES = (
    DemoIdentity("alice", "customer", ALICE),
    DemoIdentity("bob", "customer", BOB),
    DemoIdentity("carol", "customer", CAROL),
    DemoIdentity("teller", "teller", None),
    DemoIdentity("admin", "admin", None),
)


def mint(config: Config, identity: DemoIdentity, ttl_s: int = DEFAULT_TOKEN_TTL_S) -> tuple[str, datetime]:
    """A token the services accept when they share this JWT_SECRET."""
    from shared.auth import issue_token  # PyJWT loads cryptography (~75 ms): only when a token is needed

    if not config.jwt_secret:
        raise InputError(
            "no JWT_SECRET to mint tokens with: set JWT_SECRET (or jwt_secret in the config file), "
            "or run `banking-cli up`, which keeps one in .data/secrets.json"
        )
    return issue_token(
        config.jwt_secret, role=identity.role, customer_id=identity.customer_id, subject=identity.username, ttl_s=ttl_s
    )


def identity_named(username: str) -> DemoIdentity:
    for identity in DEMO_IDENTITIES:
        if identity.username == username:
            return identity
    raise InputError(
        f"no demo identity {username!r}; choose from {', '.join(identity.username for identity in DEMO_IDENTITIES)}"
    )
