"""The one error tree. Each error carries its HTTP status and a stable code; one middleware maps them.

    ApiError
    ├── ValidationError          400 VALIDATION_ERROR
    ├── UnauthorizedError        401 UNAUTHORIZED
    ├── ForbiddenError           403 FORBIDDEN
    ├── NotFoundError            404 NOT_FOUND
    ├── ConflictError            409 CONFLICT_ERROR
    │   ├── AccountLockedError   409 ACCOUNT_LOCKED
    │   ├── InsufficientFundsError 409 INSUFFICIENT_FUNDS
    │   └── TransferAbortedError 409 INSUFFICIENT_FUNDS | ACCOUNT_BUSY | NOT_FOUND | ...
    ├── PayloadTooLargeError     413 PAYLOAD_TOO_LARGE
    ├── IdempotencyKeyReusedError 422 IDEMPOTENCY_KEY_REUSED
    ├── TooManyRequestsError     429 TOO_MANY_REQUESTS
    └── ServiceUnavailableError  503 SERVICE_UNAVAILABLE
"""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 500
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = dict(headers or {})  # sent with the answer, e.g. Retry-After on a 429
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"success": False, "error": error}


class ValidationError(ApiError):
    status = 400
    code = "VALIDATION_ERROR"


class UnauthorizedError(ApiError):
    status = 401
    code = "UNAUTHORIZED"


class ForbiddenError(ApiError):
    status = 403
    code = "FORBIDDEN"


class NotFoundError(ApiError):
    status = 404
    code = "NOT_FOUND"


class ConflictError(ApiError):
    status = 409
    code = "CONFLICT_ERROR"


class AccountLockedError(ConflictError):
    code = "ACCOUNT_LOCKED"


class TransferAbortedError(ConflictError):
    """A transfer the protocol aborted; `code` is the reason in upper case (INSUFFICIENT_FUNDS, ...).

    The transfer is `error.details`, and also `data` beside a top-level `message` and `details` (the
    reason): the original system's 409 answer had that shape, and its clients print it."""

    def __init__(self, message: str, *, transfer: dict[str, Any], code: str) -> None:
        super().__init__(message, details=transfer, code=code)
        self.transfer = transfer

    def to_body(self) -> dict[str, Any]:
        return {**super().to_body(), "data": self.transfer, "message": self.message,
                "details": {"reason": self.transfer.get("reason")}}


class PayloadTooLargeError(ApiError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class IdempotencyKeyReusedError(ApiError):
    status = 422
    code = "IDEMPOTENCY_KEY_REUSED"


class TooManyRequestsError(ApiError):
    status = 429
    code = "TOO_MANY_REQUESTS"


class ServiceUnavailableError(ApiError):
    status = 503
    code = "SERVICE_UNAVAILABLE"


class InsufficientFundsError(ConflictError):
    code = "INSUFFICIENT_FUNDS"
