"""login, logout, whoami: the session kept in the token file."""

from __future__ import annotations

import typer

from cli.core.client import Client
from cli.core.config import load_config, token_path
from cli.core.errors import AuthError, CliError, UnavailableError
from cli.core.render import console, key_value_table, print_json, when
from cli.core.session import Session, clear_session, load_session, require_session, save_session

MAX_USERNAME_LENGTH = 100


def login(
    username: str = typer.Option(None, "--username", "-u", help="Your login name; asked for when not given."),
    password: str = typer.Option(
        None, "--password", "-p", help="Your password; asked for (hidden) when not given. Avoid it in shell history."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts (the token is not printed)."),
) -> None:
    """Log in (POST /auth/login) and save the token to the token file (mode 0600).

    Examples:
      banking-cli login -u alice            (asks for the password)
      echo alice123 | banking-cli login -u alice
    """
    username = username or typer.prompt("username")
    password = password if password is not None else typer.prompt("password", hide_input=True)
    session = log_in(Client(load_config()), username, password)
    if as_json:
        print_json(_session_view(session, str(token_path(load_config()))))
        return
    who = f"customer {session.customer_id}" if session.customer_id else session.role
    console.print(
        f"[green]Logged in[/] as [bold]{session.username}[/] ({who}); "
        f"session valid until {session.expires_at:%Y-%m-%d %H:%M} UTC"
    )


def log_in(client: Client, username: str, password: str) -> Session:
    """POST /auth/login and save the token; the Session it opened."""
    username = username.strip()
    if not username or len(username) > MAX_USERNAME_LENGTH:
        raise AuthError("a username is required")
    data = client.call("customer", "POST", "/auth/login", {"username": username, "password": password})
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        raise CliError("the customer service answered the login without a token")
    path = token_path(client.config)
    try:
        return save_session(path, data["token"], username, data.get("refresh_token"))
    except OSError as error:
        raise CliError(f"cannot write token file {path}: {error.strerror}") from None


def logout() -> None:
    """Log out: revoke the session on the server (POST /auth/logout), then delete the token file.

    Example: banking-cli logout
    """
    config = load_config()
    path = token_path(config)
    session = load_session(path)
    revoked = ""
    if session is not None and not session.expired:
        try:
            reply = Client(config, session.token).request("customer", "POST", "/auth/logout")
            revoked = " (revoked on the server)" if reply.ok else ""
        except UnavailableError:
            revoked = " locally only: the customer service is unavailable, the token lives until it expires"
    if clear_session(path):
        console.print(f"Logged out{revoked}.")
    else:
        console.print("Not logged in; nothing to do.")


def whoami(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """Show who is logged in, with which role, until when. No request is made.

    Examples:
      banking-cli whoami
      banking-cli whoami --json | jq -r .customer_id
    """
    path = token_path(load_config())
    session = require_session(path)
    view = _session_view(session, str(path))
    if as_json:
        print_json(view)
        return
    view["expires_at"] = when(session.expires_at.isoformat()) + " UTC"
    console.print(key_value_table(None, [(key.replace("_", " "), value) for key, value in view.items()]))


def _session_view(session: Session, token_file: str) -> dict[str, object]:
    return {
        "username": session.username,
        "role": session.role,
        "customer_id": session.customer_id,
        "expires_at": session.expires_at.isoformat(),
        "token_file": token_file,
    }
