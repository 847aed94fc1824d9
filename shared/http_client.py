"""One keep-alive HTTP session per peer service, calling it with a short-lived service token."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from shared import jsonio
from shared.auth import DEFAULT_SERVICE_TOKEN_TTL_S, TokenKeys, issue_token
from shared.log import REQUEST_ID_VAR
from shared.settings import DEFAULT_SERVICE_POOL_SIZE

DEFAULT_HTTP_TIMEOUT_S = 5.0
# Open connections to one peer at most: a peer serves no more at once than its database pool (of the
# same default size); requests past that wait here, inside their own timeout, rather than at the peer.
DEFAULT_CONNECTIONS_PER_PEER = DEFAULT_SERVICE_POOL_SIZE
# Re-mint the service token this long before it expires, so no call carries a dying token.
TOKEN_REFRESH_MARGIN_S = 30
# The caller's request id travels with every peer call, so one request's lines join across the services' logs.
REQUEST_ID_HEADER = "X-Request-ID"
JSON_CONTENT_TYPE = "application/json"
# Per-call timeouts kept as ClientTimeout objects: the callers use a handful of named settings.
TIMEOUTS_CACHED_MAX = 16


class PeerUnavailableError(Exception):
    """The peer did not answer: refused, reset, timed out, or an unreadable answer."""


@dataclass(frozen=True, slots=True)
class PeerResponse:
    status: int
    body: dict[str, Any]


class ServiceClient:
    """Calls to one peer service. Create inside a cleanup_ctx; close() on shutdown."""

    def __init__(
        self,
        base_url: str,
        *,
        jwt_secret: str | TokenKeys,
        caller: str,
        audience: str,
        timeout_s: float = DEFAULT_HTTP_TIMEOUT_S,
        connections: int = DEFAULT_CONNECTIONS_PER_PEER,
        coordinator: bool = False,
    ) -> None:
        """`audience` is the called service's name: its token is good there and nowhere else.
        `coordinator`: sign with the coordinator key (transactions_service calling /2pc/*)."""
        self._coordinator = coordinator
        self.base_url = base_url.rstrip("/")
        self._jwt_secret = jwt_secret
        self._caller = caller
        self._audience = audience
        self._timeout_s = timeout_s
        self.connections = connections
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        )
        self._token = ""
        self._token_renew_at = 0.0
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def close(self) -> None:
        await self._session.close()

    def _authorization(self) -> str:
        now = time.monotonic()
        if now >= self._token_renew_at:
            self._token, _ = issue_token(
                self._jwt_secret,
                role="service",
                subject=self._caller,
                audience=self._audience,
                ttl_s=DEFAULT_SERVICE_TOKEN_TTL_S,
                coordinator=self._coordinator,
            )
            self._token_renew_at = now + DEFAULT_SERVICE_TOKEN_TTL_S - TOKEN_REFRESH_MARGIN_S
        return f"Bearer {self._token}"

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> PeerResponse:
        all_headers = {"Authorization": self._authorization(), **(headers or {})}
        request_id = REQUEST_ID_VAR.get()
        if request_id:
            all_headers.setdefault(REQUEST_ID_HEADER, request_id)
        data = None
        if body is not None:
            data = jsonio.dumps_bytes(body)
            all_headers["Content-Type"] = JSON_CONTENT_TYPE
        try:
            async with self._session.request(
                method, self.base_url + path, data=data, headers=all_headers, timeout=self._timeout(timeout_s)
            ) as response:
                raw = await response.read()
                return PeerResponse(response.status, jsonio.loads(raw) if raw else {})
        except (aiohttp.ClientError, TimeoutError, jsonio.JsonInputError) as error:
            raise PeerUnavailableError(f"{method} {path}: {type(error).__name__}: {error}") from None

    def _timeout(self, timeout_s: float | None) -> aiohttp.ClientTimeout | None:
        """The ClientTimeout of a per-call bound, made once per value (callers pass a few named settings)."""
        if not timeout_s:
            return None
        timeout = self._timeouts.get(timeout_s)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=timeout_s)
            if len(self._timeouts) < TIMEOUTS_CACHED_MAX:
                self._timeouts[timeout_s] = timeout
        return timeout

    async def get(self, path: str, **kwargs: Any) -> PeerResponse:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, body: dict[str, Any], **kwargs: Any) -> PeerResponse:
        return await self.request("POST", path, body, **kwargs)
