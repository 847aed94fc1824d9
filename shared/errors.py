"""The one error tree. Each error carries its HTTP status and a stable code; one middleware maps them.

ApiError
├── ValidationError          400 VALIDATION_ERROR
├── UnauthorizedError        401 UNAUTHORIZED
├── ForbiddenError           403 FORBIDDEN
├── NotFoundError            404 NOT_FOUND
│   └── TransferNotFoundError 404 TRANSFER_NOT_FOUND (the coordinator has no record of the transfer)
├── ConflictError            409 CONFLICT_ERROR
│   ├── AccountLockedError   409 ACCOUNT_LOCKED
│   ├── InsufficientFundsError 409 INSUFFICIENT_FUNDS
│   └── TransferAbortedError 409 INSUFFICIENT_FUNDS | ACCOUNT_BUSY | NOT_FOUND | ...
├── PayloadTooLargeError     413 PAYLOAD_TOO_LARGE
├── IdempotencyKeyReusedError 422 IDEMPOTENCY_KEY_REUSED
├── TooManyRequestsError     429 TOO_MANY_REQUESTS
├── ServiceUnavailableError  503 SERVICE_UNAVAILABLE
└── OutcomeUnknownError      504 OUTCOME_UNKNOWN (the decision may be stored; ask about the transaction id)
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """`class NotFoundError(ApiError, status=404, code="NOT_FOUND")`: a subclass names its status and
    code in its first line, as in the tree above, and keeps its parent's where it names none."""

    status = 500
    code = "INTERNAL_ERROR"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(
        self, message: str, *, details: Any = None, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
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


class ValidationError(ApiError, status=400, code="VALIDATION_ERROR"):
    """A request the service cannot take as it is: a missing field, a bad amount, an unknown parameter."""


class UnauthorizedError(ApiError, status=401, code="UNAUTHORIZED"):
    """The caller is not authenticated: no token, or one that does not verify (expired, revoked, foreign)."""


class ForbiddenError(ApiError, status=403, code="FORBIDDEN"):
    """The caller is authenticated but may not do this (its role, or not its own resource)."""


class NotFoundError(ApiError, status=404, code="NOT_FOUND"):
    pass


class TransferNotFoundError(NotFoundError, code="TRANSFER_NOT_FOUND"):
    """The coordinator's positive "no record of this transfer": the only 404 a participant may read as abort.

    It always names the transfer (details.transaction_id), so a 404 from some other route or service,
    which names nothing, is never taken for it.
    """

    def __init__(self, transaction_id: Any) -> None:
        super().__init__("no record of this transfer", details={"transaction_id": str(transaction_id)})


class ConflictError(ApiError, status=409, code="CONFLICT_ERROR"):
    pass


class AccountLockedError(ConflictError, code="ACCOUNT_LOCKED"):
    pass


class TransferAbortedError(ConflictError):
    """A transfer the protocol aborted; `code` is the reason in upper case (INSUFFICIENT_FUNDS, ...).

    The transfer is `error.details`, and also `data` beside a top-level `message` and `details` (the
    reason): the original system's 409 answer had that shape, and its clients print it."""

    def __init__(self, message: str, *, transfer: dict[str, Any], code: str) -> None:
        super().__init__(message, details=transfer, code=code)
        self.transfer = transfer

    def to_body(self) -> dict[str, Any]:
        return {
            **super().to_body(),
            "data": self.transfer,
            "message": self.message,
            "details": {"reason": self.transfer.get("reason")},
        }


class PayloadTooLargeError(ApiError, status=413, code="PAYLOAD_TOO_LARGE"):
    pass


class IdempotencyKeyReusedError(ApiError, status=422, code="IDEMPOTENCY_KEY_REUSED"):
    """An Idempotency-Key sent again with a different request."""


class TooManyRequestsError(ApiError, status=429, code="TOO_MANY_REQUESTS"):
    pass


# A 503 always says when to try again: the conditions behind it (a database restarting, a peer down)
# pass in seconds, and a client without the hint retries at once or never.
DEFAULT_RETRY_AFTER_S = 1


class ServiceUnavailableError(ApiError, status=503, code="SERVICE_UNAVAILABLE"):
    """Nothing was decided; the same request may be sent again after Retry-After seconds."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("Retry-After", str(DEFAULT_RETRY_AFTER_S))


class InsufficientFundsError(ConflictError, code="INSUFFICIENT_FUNDS"):
    pass


class OutcomeUnknownError(ApiError, status=504, code="OUTCOME_UNKNOWN"):
    """The coordinator cannot tell whether its decision was stored (PROTOCOL.md step 5).

    504, not 503: the request did not fail, an upstream (the coordinator's log database) did not answer
    in time, and a 503 with Retry-After would invite a new transfer that may pay twice. The client asks
    about details.transaction_id (also in the Location header) instead; a repeat with the same
    Idempotency-Key is safe too.
    """

    def __init__(self, transaction_id: Any) -> None:
        status_path = f"/transfers/status/{transaction_id}"
        super().__init__(
            "the outcome of this transfer is not known yet; ask about its transaction id",
            details={"transaction_id": str(transaction_id), "status_url": status_path},
            headers={"Location": status_path},
        )
