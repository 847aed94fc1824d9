"""Sending one transfer safely: an Idempotency-Key, and bounded retries that can never pay twice."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from cli.core.client import Client, Reply, error_of
from cli.core.errors import UnavailableError

TRANSFER_ATTEMPTS = 3
RETRY_PAUSE_S = 0.3
_RETRY_STATUSES = (502, 503, 504)
SENT_MEMORY = 1000
# Transfers this process decided, newest last: the interactive shell completes `trace` with them and does
# not announce them again as notifications.
sent_transaction_ids: deque[str] = deque(maxlen=SENT_MEMORY)


@dataclass(frozen=True)
class TransferOutcome:
    """A decided transfer: committed, or aborted with its reason (the coordinator's 200 or 409)."""

    transfer: dict[str, Any]
    idempotency_key: str

    @property
    def status(self) -> str:
        return self.transfer["status"]

    @property
    def committed(self) -> bool:
        return self.status == "committed"

    @property
    def reason(self) -> str | None:
        return self.transfer.get("reason")


def send_transfer(client: Client, source: UUID, destination: UUID, amount: Decimal, key: str) -> TransferOutcome:
    """POST /transfers, retrying with the same key when the answer was lost; the decided outcome.

    The key makes a retry answer the first attempt instead of paying again, so retrying after a
    timeout or a reset is safe. Any other refusal raises its CliError.
    """
    assert amount > 0, "a transfer moves a positive amount"
    body = {"source_account_id": str(source), "destination_account_id": str(destination), "amount": amount}
    for attempt in range(1, TRANSFER_ATTEMPTS + 1):
        try:
            reply = client.request("transactions", "POST", "/transfers", body, headers={"Idempotency-Key": key})
        except UnavailableError as error:
            if attempt == TRANSFER_ATTEMPTS:
                error.hint = f"nothing is paid twice if you retry with --idempotency-key {key}"
                raise
        else:
            if not _worth_retrying(reply) or attempt == TRANSFER_ATTEMPTS:
                return _outcome(reply, key)
        time.sleep(RETRY_PAUSE_S * attempt)
    raise AssertionError("the loop returns or raises")


def _worth_retrying(reply: Reply) -> bool:
    """Lost or unfinished answers: the service was unavailable, or the first attempt is still in progress."""
    in_progress = reply.status == 409 and reply.error.get("code") == "CONFLICT_ERROR"
    return reply.status in _RETRY_STATUSES or in_progress


def _outcome(reply: Reply, key: str) -> TransferOutcome:
    details: Any = reply.error.get("details")  # JSON: checked below before it is read
    if reply.ok or (reply.status == 409 and isinstance(details, dict) and details.get("status") == "aborted"):
        transfer = reply.data if reply.ok else details
        sent_transaction_ids.append(str(transfer["transaction_id"]))
        return TransferOutcome(transfer, key)
    error = error_of(reply, "transactions")
    if reply.status in _RETRY_STATUSES:
        error.hint = f"nothing is paid twice if you retry with --idempotency-key {key}"
    raise error
