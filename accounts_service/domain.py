"""Pure rules of the participant: states, votes, changes. No I/O."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID


class ParticipantState(enum.StrEnum):
    PREPARED = "prepared"
    COMMITTED = "committed"
    ABORTED = "aborted"


class VoteReason(enum.StrEnum):
    INSUFFICIENT_FUNDS = "insufficient_funds"
    ACCOUNT_BUSY = "account_busy"
    ACCOUNT_NOT_FOUND = "account_not_found"
    ALREADY_ABORTED = "already_aborted"


class LedgerKind(enum.StrEnum):
    TRANSFER = "transfer"
    OPENING = "opening"
    ADJUSTMENT = "adjustment"
    UNSAFE_WITHDRAWAL = "unsafe_withdrawal"


@dataclass(frozen=True, slots=True)
class Change:
    """One leg of a transfer at this participant: a signed amount on one account."""
    account_id: UUID
    amount: Decimal

    def __post_init__(self) -> None:
        assert isinstance(self.amount, Decimal), "a change is a Decimal"
        assert self.amount != 0, "a change moves money"


@dataclass(frozen=True, slots=True)
class Vote:
    yes: bool
    reason: VoteReason | None = None

    def __post_init__(self) -> None:
        assert self.yes == (self.reason is None), "a NO vote has a reason, a YES vote none"


VOTE_YES = Vote(yes=True)


def vote_from_log(states: dict[UUID, ParticipantState], changes: list[Change]) -> Vote | None:
    """What the participant log already says about this prepare, or None when it must be prepared now.

    A tombstone anywhere means NO forever; every leg prepared or committed means YES again.
    """
    if any(state is ParticipantState.ABORTED for state in states.values()):
        return Vote(yes=False, reason=VoteReason.ALREADY_ABORTED)
    if states and all(change.account_id in states for change in changes):
        return VOTE_YES
    return None


def refusal_reason(*, exists: bool, locked: bool, affordable: bool = False) -> VoteReason:
    """Why a conditional lock of one account failed (it matched no row).

    Read after the failed lock, the row may have been released meanwhile: unlocked and affordable
    then means it was busy a moment ago, which is worth another try, not insufficient funds.
    """
    if not exists:
        return VoteReason.ACCOUNT_NOT_FOUND
    if locked or affordable:
        return VoteReason.ACCOUNT_BUSY
    return VoteReason.INSUFFICIENT_FUNDS


def in_global_order(changes: list[Change]) -> list[Change]:
    """Lock accounts in account-id order so two transfers never wait on each other in a cycle."""
    ordered = sorted(changes, key=lambda change: change.account_id)
    assert len({change.account_id for change in ordered}) == len(ordered), "one change per account"
    return ordered
