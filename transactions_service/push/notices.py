"""What a NOTIFY payload says and who hears what: pure, no I/O.

Staff (teller, admin) hear every protocol event of every transfer. A customer hears the protocol
events of transfers touching their accounts (what GET /transactions/{id} shows them anyway) and, once
a transfer touching one of their accounts is decided, one `transfer` notice per such account.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared import jsonio
from transactions_service.domain import wire_status
from transactions_service.protocol import TransferStatus

DECISION_EVENT = "decision"


class NoticeError(ValueError):
    """A payload on the channel that is not a notice this code wrote."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One statement's events of one transfer, with the transfer as stored when they were logged."""

    transaction_id: UUID
    status: str
    reason: str | None
    source_account_id: UUID | None
    destination_account_id: UUID | None
    amount: Decimal | None
    events: tuple[dict[str, Any], ...]
    truncated: bool = False

    @property
    def accounts(self) -> frozenset[UUID]:
        return frozenset(account for account in (self.source_account_id, self.destination_account_id) if account)

    @property
    def decided(self) -> bool:
        return any(event.get("event_type") == DECISION_EVENT for event in self.events)


def parse_notice(payload: str) -> Notice:
    try:
        raw = jsonio.loads(payload)
        return Notice(
            transaction_id=UUID(raw["transaction_id"]),
            status=wire_status(TransferStatus(raw["status"])),
            reason=raw.get("reason"),
            source_account_id=_optional_uuid(raw.get("source_account_id")),
            destination_account_id=_optional_uuid(raw.get("destination_account_id")),
            amount=Decimal(raw["amount"]) if raw.get("amount") is not None else None,
            events=tuple(raw["events"]),
            truncated=bool(raw.get("truncated", False)),
        )
    except (jsonio.JsonInputError, KeyError, TypeError, ValueError, ArithmeticError) as error:
        raise NoticeError(f"unreadable notice: {error}") from None


def _optional_uuid(value: Any) -> UUID | None:
    return UUID(str(value)) if value is not None else None


def protocol_message(notice: Notice) -> dict[str, Any]:
    """The live protocol stream's message: the transfer and the events one statement logged."""
    return {
        "type": "protocol",
        "transaction_id": notice.transaction_id,
        "status": notice.status,
        "reason": notice.reason,
        "source_account_id": notice.source_account_id,
        "destination_account_id": notice.destination_account_id,
        "amount": notice.amount,
        "events": list(notice.events),
        "truncated": notice.truncated,
    }


def transfer_messages(notice: Notice, own_accounts: frozenset[UUID]) -> list[dict[str, Any]]:
    """One `transfer` notice per own account the decided transfer touches: debit or credit, and its outcome."""
    if not notice.decided or notice.amount is None:
        return []
    legs = (
        (notice.source_account_id, "debit", notice.destination_account_id),
        (notice.destination_account_id, "credit", notice.source_account_id),
    )
    return [
        {
            "type": "transfer",
            "transaction_id": notice.transaction_id,
            "account_id": account,
            "direction": direction,
            "counterparty_account_id": counterparty,
            "amount": notice.amount,
            "status": notice.status,
            "reason": notice.reason,
        }
        for account, direction, counterparty in legs
        if account in own_accounts
    ]


def messages_for(notice: Notice, *, staff: bool, own_accounts: frozenset[UUID]) -> list[dict[str, Any]]:
    """Everything one subscriber hears of one notice, in the order to send it."""
    if staff:
        return [protocol_message(notice)]
    if not notice.accounts & own_accounts:
        return []
    return [protocol_message(notice), *transfer_messages(notice, own_accounts)]
