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
class Leg:
    """One leg of a transfer at this participant: a signed change on one account."""

    account_id: UUID
    change: Decimal

    def __post_init__(self) -> None:
        assert isinstance(self.change, Decimal), "a change is a Decimal"
        assert self.change != 0, "a change moves money"


@dataclass(frozen=True, slots=True)
class Vote:
    yes: bool
    reason: VoteReason | None = None

    def __post_init__(self) -> None:
        assert self.yes == (self.reason is None), "a NO vote has a reason, a YES vote none"


VOTE_YES = Vote(yes=True)


def vote_from_log(states: dict[UUID, ParticipantState], changes: list[Leg]) -> Vote | None:
    """What the participant log already says about this prepare, or None when it must be prepared now.

    A tombstone anywhere means NO forever; every leg prepared or committed means YES again.
    """
    if any(state is ParticipantState.ABORTED for state in states.values()):
        return Vote(yes=False, reason=VoteReason.ALREADY_ABORTED)
    if states and all(change.account_id in states for change in changes):
        return VOTE_YES
    return None


@dataclass(frozen=True, slots=True)
class LegState:
    """One leg as the prepare statement saw it: the account's latest row (locked), and any earlier log state."""

    leg: Leg
    account_exists: bool
    balance: Decimal | None
    locked_by: UUID | None
    earlier_state: ParticipantState | None


def prepare_vote(legs: list[LegState], locked_legs: int) -> Vote:
    """The vote, from what the one prepare statement saw and did (it locks all legs or none)."""
    assert locked_legs in (0, len(legs)), "a prepare locks every leg or none"
    earlier = {leg.leg.account_id: leg.earlier_state for leg in legs if leg.earlier_state is not None}
    earlier_vote = vote_from_log(earlier, [leg.leg for leg in legs]) if earlier else None
    if earlier_vote is not None:
        return earlier_vote
    if locked_legs == len(legs):
        return VOTE_YES
    for leg in legs:
        if not leg.account_exists:
            return Vote(yes=False, reason=VoteReason.ACCOUNT_NOT_FOUND)
    for leg in legs:
        if leg.locked_by is not None:
            return Vote(yes=False, reason=VoteReason.ACCOUNT_BUSY)
    # Every account exists here (checked above), so each has a balance.
    assert any(leg.balance is not None and leg.balance + leg.leg.change < 0 for leg in legs), (
        "an unlocked, affordable leg would be locked"
    )
    return Vote(yes=False, reason=VoteReason.INSUFFICIENT_FUNDS)


def in_global_order(changes: list[Leg]) -> list[Leg]:
    """Lock accounts in account-id order so two transfers never wait on each other in a cycle."""
    ordered = sorted(changes, key=lambda change: change.account_id)
    assert len({change.account_id for change in ordered}) == len(ordered), "one change per account"
    return ordered


# A transfer moves money: a debit on its source and a credit on its destination.
TRANSFER_LEGS = 2


def balanced_legs(amounts: list[Decimal]) -> bool:
    """Whether the legs of one transfer that a participant holds may be prepared: once it holds every leg
    (two or more), they must sum to zero, so no message, even a validly signed one, creates money."""
    return len(amounts) < TRANSFER_LEGS or sum(amounts, Decimal(0)) == 0
