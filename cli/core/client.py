"""A small synchronous HTTP client for the three services: exact Decimal JSON, the envelope, clean errors.

Built on urllib so a command starts fast, and thread-safe (nothing shared between calls) so the demos
can fire requests from many threads. A service that cannot be reached becomes an UnavailableError, an
error answer becomes the CliError its status means (cli.core.errors); nothing else escapes.
"""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from cli.core.config import Config
from cli.core.errors import CliError, UnavailableError, error_for_status
from shared import jsonio

SERVICE_LABELS = {
    "customer": "customer service",
    "accounts": "accounts service",
    "transactions": "transactions service",
}
MAX_ANSWER_BYTES = 8 * 1024 * 1024
USER_AGENT = "banking-cli"
_HINT_BY_STATUS = {401: "run: banking-cli login"}


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    elapsed_ms: float  # a duration, not money: float is fine

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and self.body.get("success") is True

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def error(self) -> dict[str, Any]:
        error = self.body.get("error")
        return error if isinstance(error, dict) else {}


class RequestOptions(TypedDict, total=False):
    headers: dict[str, str] | None  # sent besides Accept, User-Agent, Authorization and Content-Type
    token: str | None  # instead of the client's own


class Client:
    """Calls to the services named `customer`, `accounts`, `transactions` in the config."""

    def __init__(self, config: Config, token: str | None = None) -> None:
        self.config = config
        self.token = token

    def request(
        self, service: str, method: str, path: str, body: Any = None, **options: Unpack[RequestOptions]
    ) -> Reply:
        """Any HTTP answer as a Reply; UnavailableError when the service does not answer usably."""
        url = self.config.url(service) + path
        all_headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(options.get("headers") or {})}
        bearer = options.get("token") or self.token
        if bearer:
            all_headers["Authorization"] = f"Bearer {bearer}"
        data = None
        if body is not None:
            data = jsonio.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=all_headers, method=method)
        started = time.perf_counter()
        status, raw = self._send(request, service)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return Reply(status, self._parse(raw, status, service), elapsed_ms)

    def _send(self, request: urllib.request.Request, service: str) -> tuple[int, bytes]:
        label = f"{SERVICE_LABELS[service]} at {self.config.url(service)}"
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                return response.status, response.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as answer:  # an HTTP error status is still an answer
            with answer:
                return answer.code, answer.read(MAX_ANSWER_BYTES)
        except urllib.error.URLError as error:
            raise UnavailableError(f"{label} is unavailable: {_reason(error.reason)}") from None
        except TimeoutError:
            raise UnavailableError(f"{label} did not answer within {self.config.timeout_s:g}s") from None
        except (ConnectionError, http.client.HTTPException, OSError) as error:
            raise UnavailableError(f"{label} is unavailable: {_reason(error)}") from None

    @staticmethod
    def _parse(raw: bytes, status: int, service: str) -> dict[str, Any]:
        try:
            body = jsonio.loads(raw) if raw.strip() else {}
        except jsonio.JsonInputError:
            body = None
        if not isinstance(body, dict):
            error_class = UnavailableError if status >= 500 else CliError
            raise error_class(f"{SERVICE_LABELS[service]} sent an answer that is not the JSON envelope (HTTP {status})")
        return body

    def call(self, service: str, method: str, path: str, body: Any = None, **options: Unpack[RequestOptions]) -> Any:
        """The answer's data on success; the CliError its status means otherwise."""
        reply = self.request(service, method, path, body, **options)
        if not reply.ok:
            raise error_of(reply, service)
        return reply.data

    def get(self, service: str, path: str, **kwargs: Any) -> Any:
        return self.call(service, "GET", path, **kwargs)


def error_of(reply: Reply, service: str) -> CliError:
    """The CliError for an error answer: its status picks the class, its envelope gives the words."""
    code = reply.error.get("code")
    message = reply.error.get("message") or f"HTTP {reply.status}"
    if reply.status >= 500 and not reply.error:
        message = f"{SERVICE_LABELS[service]} failed with HTTP {reply.status}"
    elif reply.status >= 500:
        message = f"{SERVICE_LABELS[service]}: {message}"
    error_class = error_for_status(reply.status)
    return error_class(f"{message} ({code})" if code else message, hint=_HINT_BY_STATUS.get(reply.status), code=code)


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__
