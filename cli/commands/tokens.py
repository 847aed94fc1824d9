"""`banking-cli tokens`: demo tokens for each role, minted locally from JWT_SECRET, for REST experiments."""

from __future__ import annotations

from datetime import datetime

import typer

from cli.core.config import Config, load_config
from cli.core.tokens import DEFAULT_TOKEN_TTL_S, DEMO_IDENTITIES, DemoIdentity, identity_named, mint
from shared.demo_ids import ALICE_MAIN

MAX_TOKEN_TTL_S = 7 * 24 * 3600


def tokens(
    who: list[str] = typer.Argument(None, help="Only these identities (alice, bob, carol, teller, admin)."),
    ttl_s: int = typer.Option(
        DEFAULT_TOKEN_TTL_S, "--ttl", min=1, max=MAX_TOKEN_TTL_S, help="Lifetime of each token in seconds."
    ),
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
        from cli.core.render import print_json

        print_json(
            [
                {
                    "username": identity.username,
                    "role": identity.role,
                    "customer_id": identity.customer_id,
                    "token": token,
                    "expires_at": expires_at,
                }
                for identity, token, expires_at in minted
            ]
        )
        return
    _print_tokens(config, minted)


def _print_tokens(config: Config, minted: list[tuple[DemoIdentity, str, datetime]]) -> None:
    from cli.core.render import console

    secret_note = "JWT_SECRET"
    console.print(f"[bold]Demo tokens[/] signed with {secret_note}, valid until {minted[0][2]:%Y-%m-%d %H:%M} UTC\n")
    for identity, token, _expires_at in minted:
        who = f"{identity.role}, customer {identity.customer_id}" if identity.customer_id else identity.role
        console.print(f"[bold cyan]{identity.username}[/] ({who})")
        console.print(token, soft_wrap=True)
        console.print()
    console.print(
        f'[dim]use: curl -H "Authorization: Bearer <token>" {config.url("accounts")}/accounts/{ALICE_MAIN}[/]'
    )
