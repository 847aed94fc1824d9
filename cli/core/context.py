"""What every command starts from: the config, the saved session, a client carrying its token."""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from cli.core.client import Client
from cli.core.config import Config, load_config, token_path
from cli.core.errors import InputError
from cli.core.inputs import parse_id
from cli.core.session import Session, require_session


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


def logged_in() -> LoggedIn:
    config = load_config()
    session = require_session(token_path(config))
    return LoggedIn(config, session, Client(config, session.token))
