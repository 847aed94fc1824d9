"""Tokens minted locally from JWT_SECRET: `banking-cli tokens` for REST experiments, and the demos' staff tokens."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import typer

from cli.config import Config, load_config
from cli.errors import InputError

DEFAULT_TOKEN_TTL_S = 3600
MAX_TOKEN_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class DemoIdentity:
    username: str
    role: str
    customer_id: UUID | None


ALICE = UUID("550e8400-e29b-41d4-a716-446655440001")
BOB = UUID("550e8400-e29b-41d4-a716-446655440002")
CAROL = UUID("550e8400-e29b-41d4-a716-446655440003")
DEMO_IDENTITIES = (
    DemoIdentity("alice", "customer", ALICE),
    DemoIdentity("bob", "customer", BOB),
    DemoIdentity("carol", "customer", CAROL),
    DemoIdentity("teller", "teller", None),
    DemoIdentity("admin", "admin", None),
)


def mint(config: Config, identity: DemoIdentity, ttl_s: int = DEFAULT_TOKEN_TTL_S) -> tuple[str, datetime]:
    """A token the services accept when they share this JWT_SECRET."""
    from shared.auth import issue_token  # imports aiohttp: only when a token is really needed

    if not config.jwt_secret:
        raise InputError("no JWT_SECRET to mint tokens with: set JWT_SECRET (or jwt_secret in the config file), "
                         "or run `banking-cli up`, which keeps one in .data/secrets.json")
    return issue_token(config.jwt_secret, role=identity.role, customer_id=identity.customer_id,
                       subject=identity.username, ttl_s=ttl_s)


def identity_named(username: str) -> DemoIdentity:
    for identity in DEMO_IDENTITIES:
        if identity.username == username:
            return identity
    raise InputError(f"no demo identity {username!r}; choose from "
                     f"{', '.join(identity.username for identity in DEMO_IDENTITIES)}")


def tokens(
    who: list[str] = typer.Argument(None, help="Only these identities (alice, bob, carol, teller, admin)."),
    ttl_s: int = typer.Option(DEFAULT_TOKEN_TTL_S, "--ttl", min=1, max=MAX_TOKEN_TTL_S,
                              help="Lifetime of each token in seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Print demo tokens for each role, minted locally from JWT_SECRET, for REST experiments.

    They are valid only where the services share the same JWT_SECRET (env var or config file).

    Examples:
      banking-cli tokens
      banking-cli tokens admin --ttl 600
      TOKEN=$(banking-cli tokens admin --json | jq -r '.[0].token')
      curl -H "Authorization: Bearer $TOKEN" localhost:3003/transactions/monitoring/stats
    """
    config = load_config()
    chosen = [identity_named(name) for name in who] if who else list(DEMO_IDENTITIES)
    minted = [(identity, *mint(config, identity, ttl_s)) for identity in chosen]
    if as_json:
        from cli.render import print_json

        print_json([{"username": identity.username, "role": identity.role, "customer_id": identity.customer_id,
                     "token": token, "expires_at": expires_at} for identity, token, expires_at in minted])
        return
    _print_tokens(config, minted)


def _print_tokens(config: Config, minted: list[tuple[DemoIdentity, str, datetime]]) -> None:
    from cli.render import console

    secret_note = "JWT_SECRET"
    console.print(f"[bold]Demo tokens[/] signed with {secret_note}, valid until "
                  f"{minted[0][2]:%Y-%m-%d %H:%M} UTC\n")
    for identity, token, _expires_at in minted:
        who = f"{identity.role}, customer {identity.customer_id}" if identity.customer_id else identity.role
        console.print(f"[bold cyan]{identity.username}[/] ({who})")
        console.print(token, soft_wrap=True)
        console.print()
    console.print('[dim]use: curl -H "Authorization: Bearer <token>" '
                  f'{config.url("accounts")}/accounts/660e8400-e29b-41d4-a716-446655440001[/]')
