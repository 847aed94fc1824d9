"""banking-cli: the entry point that gathers every command."""
from __future__ import annotations

import typer

from cli.up import up

app = typer.Typer(
    name="banking-cli",
    help="Talk to the banking system: log in, move money, watch the two-phase commit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Talk to the banking system: log in, move money, watch the two-phase commit."""


app.command(name="up")(up)

if __name__ == "__main__":
    app()
