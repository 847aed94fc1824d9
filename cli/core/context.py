"""What every command starts from: the config, the saved session, a client carrying its token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from cli.core.client import Client
from cli.core.config import Config, load_config, token_path
from cli.core.errors import InputError
from cli.core.inputs import parse_id
from cli.core.session import Session, load_session, require_session, save_session


@dataclass(frozen=True)
class LoggedIn:
    config: Config
    session: Session
    client: Client

    def customer_id(self, chosen: str | None) -> UUID:
        """The customer a command is about: the chosen one (staff), else the logged-in customer."""
        if chosen:
            return parse_id(chosen, name="customer id")
        if self.session.customer_id is None:
            raise InputError(f"a {self.session.role} login has no customer of its own: pass --customer ID")
        return UUID(self.session.customer_id)


# Refresh this long before the access token expires, so no command starts with a dying token.
REFRESH_MARGIN_S = 60


def logged_in() -> LoggedIn:
    config = load_config()
    path = token_path(config)
    session = load_session(path)
    if session is not None and session.refresh_token and _expires_soon(session):
        session = _refreshed(config, path, session)
    session = require_session(path)
    return LoggedIn(config, session, Client(config, session.token))


def _expires_soon(session: Session) -> bool:
    return (session.expires_at - datetime.now(UTC)).total_seconds() < REFRESH_MARGIN_S


def _refreshed(config: Config, path: Path, session: Session) -> Session:
    """Spend the refresh token for a new pair (POST /auth/refresh) and save it; the old session if refused."""
    reply = Client(config).request("customer", "POST", "/auth/refresh", {"refresh_token": session.refresh_token})
    if not reply.ok or not isinstance(reply.data, dict):
        return session  # require_session then says it expired; login starts a new one
    return save_session(path, reply.data["token"], session.username, reply.data.get("refresh_token"))
