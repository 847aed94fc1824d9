"""Transfers as the coordinator sees them: the request, the stored transfer, its legs. No I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from transactions_service.protocol import AbortReason, EventType, TransferStatus

MAX_IDEMPOTENCY_KEY_LENGTH = 200


@dataclass(frozen=True, slots=True)
class TransferRequest:
    source_account_id: UUID
    destination_account_id: UUID
    amount: Decimal
    # The client's own name for the transfer (the original system's body `transaction_id`): it becomes
    # the transfer's primary key, so the database itself refuses a second transfer under that name.
    transaction_id: UUID | None = None

    def __post_init__(self) -> None:
        assert self.source_account_id != self.destination_account_id, "a transfer moves money between two accounts"
        assert self.amount > 0, "a transfer moves a positive amount"

    def fingerprint(self, requested_by: str) -> str:
        """Identifies the request's meaning (who moves what where, not its name), so one Idempotency-Key or
        transaction_id cannot be reused for another transfer."""
        text = f"{requested_by}|{self.source_account_id}|{self.destination_account_id}|{self.amount.normalize()}"
        return hashlib.sha256(text.encode()).hexdigest()

    def repeats(self, first: Transfer, requested_by: str) -> bool:
        """Whether this request, which met `first` on one of its unique names, asks for that same transfer.

        The same caller and body, and, when this request names a transfer, that name: a key used once
        with transaction_id A cannot be reused for B. Naming by its id a transfer made without a name
        is a repeat too (the original's clients retry a transfer under the id its first answer gave).
        """
        same_name = self.transaction_id is None or self.transaction_id == first.transaction_id
        return same_name and first.request_fingerprint == self.fingerprint(requested_by)

    @property
    def legs(self) -> tuple[Leg, Leg]:
        return legs_of(self.source_account_id, self.destination_account_id, self.amount)


@dataclass(frozen=True, slots=True)
class Leg:
    """One account's signed change within a transfer."""

    account_id: UUID
    change: Decimal


def legs_of(source_account_id: UUID, destination_account_id: UUID, amount: Decimal) -> tuple[Leg, Leg]:
    legs = (Leg(source_account_id, -amount), Leg(destination_account_id, amount))
    assert sum(leg.change for leg in legs) == 0, "a transfer creates and destroys no money"
    return legs


@dataclass(frozen=True, slots=True)
class NewTransfer:
    """A transfer about to be accepted: the row the accept writes `preparing`, and its first events."""

    transaction_id: UUID
    request: TransferRequest
    events: list[Event]
    idempotency_key: str | None
    requested_by: str
    requested_by_customer_id: UUID | None


@dataclass(frozen=True, slots=True)
class Transfer:
    transaction_id: UUID
    source_account_id: UUID
    destination_account_id: UUID
    amount: Decimal
    status: TransferStatus
    reason: AbortReason | None
    idempotency_key: str | None
    request_fingerprint: str
    requested_by: str
    requested_by_customer_id: UUID | None
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None
    completed_at: datetime | None
    completion_attempts: int = 0
    next_attempt_at: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Transfer:
        """Check the log twice: what recovery reads back must satisfy what was written."""
        transfer = cls(
            **{
                **row,
                "status": TransferStatus(row["status"]),
                "reason": AbortReason(row["reason"]) if row["reason"] else None,
            }
        )
        assert transfer.amount > 0, "a logged transfer has a positive amount"
        assert (transfer.status is TransferStatus.PREPARING) == (transfer.decided_at is None), (
            "decided_at marks a decision"
        )
        assert (transfer.status is TransferStatus.ABORTED) == (transfer.reason is not None), "only aborts have reasons"
        return transfer

    @property
    def legs(self) -> tuple[Leg, Leg]:
        return legs_of(self.source_account_id, self.destination_account_id, self.amount)

    @property
    def completed(self) -> bool:
        return self.completed_at is not None

    def view(self) -> dict[str, Any]:
        """The public JSON shape of a transfer (undecided is `pending` on the wire, see wire_status)."""
        return {
            "transaction_id": self.transaction_id,
            "status": wire_status(self.status),
            "reason": self.reason.value if self.reason else None,
            "source_account_id": self.source_account_id,
            "destination_account_id": self.destination_account_id,
            "amount": self.amount,
            "completed": self.completed,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "decided_at": self.decided_at,
            "completed_at": self.completed_at,
        }


def wire_status(status: TransferStatus) -> str:
    """The status a client sees: the original system's `pending | committed | aborted`.

    The protocol (and the coordinator log, its CHECK constraints, triggers and compare-and-sets) keeps
    calling the undecided state `preparing`; only the edge translates it, so the log needs no migration.
    """
    return WIRE_PENDING if status is TransferStatus.PREPARING else status.value


def status_of_wire(name: str) -> TransferStatus:
    """The state a client names: `pending`, or our own `preparing` (an alias), `committed`, `aborted`."""
    return TransferStatus.PREPARING if name == WIRE_PENDING else TransferStatus(name)


WIRE_PENDING = "pending"
WIRE_STATUSES = (WIRE_PENDING, TransferStatus.COMMITTED.value, TransferStatus.ABORTED.value)


@dataclass(frozen=True, slots=True)
class Event:
    event_type: EventType
    participant: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))


# What a customer may read of a protocol event's details: amounts, votes and states. Not who asked
# (a login name) nor a failure's text (it names internal hosts and ports).
CUSTOMER_EVENT_DETAILS = frozenset(
    {"amount", "accounts", "vote", "reason", "status", "latency_ms", "presumed_abort", "batch_id", "batch_size"}
)


def customer_event_view(event: dict[str, Any], *, requester: bool = False) -> dict[str, Any]:
    """An event as shown to a customer: the details cut down to CUSTOMER_EVENT_DETAILS (and, for the
    customer who asked for the transfer, who asked: themselves)."""
    shown = CUSTOMER_EVENT_DETAILS | {"requested_by"} if requester else CUSTOMER_EVENT_DETAILS
    details = event.get("details") or {}
    return {**event, "details": {key: value for key, value in details.items() if key in shown}}
