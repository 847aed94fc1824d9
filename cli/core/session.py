"""The logged-in session: a bearer token kept in the token file (mode 0600), and what its payload says.

The file holds JSON {"token", "username", "refresh_token"}; a file holding just a raw JWT (for example one printed by
`banking-cli tokens`) works too. The payload is read without verifying the signature: the services
verify it, the CLI only needs to know who it is and when it expires.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cli.core.errors import AuthError

TOKEN_FILE_MODE = 0o600
TOKEN_DIR_MODE = 0o700
MAX_TOKEN_FILE_BYTES = 16 * 1024


@dataclass(frozen=True)
class Session:
    token: str
    username: str
    role: str
    customer_id: str | None
    expires_at: datetime
    refresh_token: str | None = None  # spent for a new token when this one is (nearly) expired

    @property
    def expired(self) -> bool:
        return self.expires_at <= datetime.now(UTC)

    @property
    def is_staff(self) -> bool:
        return self.role in ("teller", "admin")


def session_from_token(token: str, username: str | None = None, refresh_token: str | None = None) -> Session:
    payload = _payload(token)
    try:
        expires_at = datetime.fromtimestamp(int(payload["exp"]), UTC)
        role = str(payload["role"])
    except (KeyError, TypeError, ValueError):
        raise AuthError("the saved token has no role or expiry; log in again") from None
    customer_id = payload.get("customer_id")
    return Session(
        token=token,
        username=username or str(payload.get("sub") or role),
        role=role,
        customer_id=str(customer_id) if customer_id else None,
        expires_at=expires_at,
        refresh_token=refresh_token,
    )


def _payload(token: str) -> dict:
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("the saved token is not a JWT; log in again")
    encoded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        payload = json.loads(base64.urlsafe_b64decode(encoded))
    except (ValueError, UnicodeDecodeError):
        raise AuthError("the saved token is unreadable; log in again") from None
    if not isinstance(payload, dict):
        raise AuthError("the saved token is unreadable; log in again")
    return payload


def save_session(path: Path, token: str, username: str, refresh_token: str | None = None) -> Session:
    """Write the token file readable by its owner only; replace atomically so a crash leaves the old one."""
    session = session_from_token(token, username, refresh_token)
    path.parent.mkdir(mode=TOKEN_DIR_MODE, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, TOKEN_FILE_MODE)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"token": token, "username": username, "refresh_token": refresh_token}, file)
    os.chmod(temporary, TOKEN_FILE_MODE)  # an existing temporary file keeps its old mode on open
    os.replace(temporary, path)
    return session


def load_session(path: Path) -> Session | None:
    """The saved session, or None when there is no token file."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_TOKEN_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise AuthError(f"cannot read token file {path}: {error.strerror}") from None
    if len(raw) > MAX_TOKEN_FILE_BYTES:
        raise AuthError(f"token file {path} is too large to be a token")
    text = raw.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        try:
            saved = json.loads(text)
            refresh_token = saved.get("refresh_token")
            return session_from_token(
                str(saved["token"]), saved.get("username"), refresh_token if isinstance(refresh_token, str) else None
            )
        except (ValueError, KeyError, TypeError):
            raise AuthError(f"token file {path} is unreadable; log in again") from None
    return session_from_token(text)


def require_session(path: Path) -> Session:
    """The saved, unexpired session, or an AuthError telling the user to log in."""
    session = load_session(path)
    if session is None:
        raise AuthError("not logged in", hint="run: banking-cli login")
    if session.expired:
        raise AuthError(
            f"your session expired at {session.expires_at:%Y-%m-%d %H:%M} UTC", hint="run: banking-cli login"
        )
    return session


def clear_session(path: Path) -> bool:
    """Remove the token file; True when there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
