"""The CLI's errors and the exit code each one means. Every failure a user can cause ends as one line.

CliError                      1  anything else (a 500, an unexpected answer)
├── InputError                2  usage: a bad id, amount or option (also click's own usage errors)
├── AuthError                 3  not logged in, token expired or refused (401, 403)
├── NotFoundError             4  no such customer, account or transfer (404)
├── RefusedError              5  the system said no: transfer aborted, conflict, key reused (409, 422)
└── UnavailableError          6  a service is down, timed out or answered 503
"""

from __future__ import annotations

EXIT_OTHER = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_REFUSED = 5
EXIT_UNAVAILABLE = 6


class CliError(Exception):
    exit_code = EXIT_OTHER

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code  # the API's stable error code, when the error came from a service


class InputError(CliError):
    exit_code = EXIT_USAGE


class AuthError(CliError):
    exit_code = EXIT_AUTH


class NotFoundError(CliError):
    exit_code = EXIT_NOT_FOUND


class RefusedError(CliError):
    exit_code = EXIT_REFUSED


class UnavailableError(CliError):
    exit_code = EXIT_UNAVAILABLE


_ERROR_BY_STATUS: dict[int, type[CliError]] = {
    400: InputError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: RefusedError,
    413: InputError,
    422: RefusedError,
    429: UnavailableError,
    502: UnavailableError,
    503: UnavailableError,
    504: UnavailableError,
}


def error_for_status(status: int) -> type[CliError]:
    """The error class an HTTP error status maps to (anything unlisted is a plain CliError, exit 1)."""
    return _ERROR_BY_STATUS.get(status, CliError)
