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
    INVALID_LEGS = "invalid_legs"  # batch only: an entry whose legs cannot balance (the single route answers 400)


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


# --- a batch of prepares (accounts_service/participant_batch.py) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchEntry:
    """One transfer of a prepare-batch message: its legs here, in account-id order."""

    transaction_id: UUID
    legs: tuple[Leg, ...]

    def __post_init__(self) -> None:
        assert self.legs, "an entry names at least one leg"
        assert list(self.legs) == in_global_order(list(self.legs)), "legs in account-id order, one per account"


@dataclass(frozen=True, slots=True)
class LockedAccount:
    """An account row as the batch's transaction locked it (FOR UPDATE): its latest version."""

    balance: Decimal
    locked_by: UUID | None


@dataclass(frozen=True, slots=True)
class LoggedLeg:
    """A participant-log row of one of the batch's transfers, on any account."""

    account_id: UUID
    state: ParticipantState
    change: Decimal


class PrepareAction(enum.Enum):
    LOCK = "lock"  # YES, new here: lock every leg and log it prepared
    NOTHING = "nothing"  # the log already answers (YES again, or NO after a tombstone), or the legs are invalid
    TOMBSTONE = "tombstone"  # NO: log every leg aborted, so this transfer never votes YES here later
    RETRY = "retry"  # busy on a lock held by a transfer outside this message: ask again after a release


@dataclass(frozen=True, slots=True)
class EntryPlan:
    vote: Vote
    action: PrepareAction

    def __post_init__(self) -> None:
        assert (self.action is PrepareAction.LOCK) <= self.vote.yes, "only a YES locks"
        assert (self.action in (PrepareAction.TOMBSTONE, PrepareAction.RETRY)) <= (not self.vote.yes), "a NO"


def plan_prepare_batch(
    entries: list[BatchEntry],
    accounts: dict[UUID, LockedAccount],
    logged: dict[UUID, list[LoggedLeg]],
    *,
    in_message: frozenset[UUID],
    may_retry: bool,
    queued: frozenset[UUID] = frozenset(),
) -> list[EntryPlan]:
    """Each entry's vote and what to write for it, in message order, from the rows the batch locked.

    The rule for two transfers of one message on one account: the lock is one transfer's, and the earlier
    entry that can take it does; a later entry there is busy on a holder inside this message, which the
    coordinator decides only after this answer, so waiting cannot help: it votes NO account_busy at once.
    Busy on a holder outside the message it is RETRY while may_retry, else NO account_busy. An account in
    `queued` (an older prepare waits for it here) counts as held outside the message, even while free.
    """
    claimed: dict[UUID, UUID] = {}  # account -> the entry of this message that takes its lock now
    plans = []
    for entry in entries:
        plan = _plan_entry(
            entry, accounts, logged.get(entry.transaction_id, []), claimed, in_message, may_retry, queued
        )
        if plan.action is PrepareAction.LOCK:
            claimed.update((leg.account_id, entry.transaction_id) for leg in entry.legs)
        plans.append(plan)
    return plans


def _plan_entry(
    entry: BatchEntry,
    accounts: dict[UUID, LockedAccount],
    logged: list[LoggedLeg],
    claimed: dict[UUID, UUID],
    in_message: frozenset[UUID],
    may_retry: bool,
    queued: frozenset[UUID],
) -> EntryPlan:
    named = {leg.account_id for leg in entry.legs}
    if not _entry_balances(entry, logged, named):
        return EntryPlan(Vote(yes=False, reason=VoteReason.INVALID_LEGS), PrepareAction.NOTHING)
    earlier = {row.account_id: row.state for row in logged if row.account_id in named}
    known = vote_from_log(earlier, list(entry.legs)) if earlier else None
    if known is not None:
        return EntryPlan(known, PrepareAction.NOTHING)
    if earlier:  # some legs logged here, others not, no tombstone: a message unlike the first; never lock twice
        return EntryPlan(Vote(yes=False, reason=VoteReason.ACCOUNT_BUSY), PrepareAction.TOMBSTONE)
    if not named <= accounts.keys():
        return EntryPlan(Vote(yes=False, reason=VoteReason.ACCOUNT_NOT_FOUND), PrepareAction.TOMBSTONE)
    holders = {claimed.get(account_id) or accounts[account_id].locked_by for account_id in named} - {None}
    if holders or named & queued:
        busy = Vote(yes=False, reason=VoteReason.ACCOUNT_BUSY)
        outside_only = not holders & in_message
        return EntryPlan(busy, PrepareAction.RETRY if may_retry and outside_only else PrepareAction.TOMBSTONE)
    if any(accounts[leg.account_id].balance + leg.change < 0 for leg in entry.legs):
        return EntryPlan(Vote(yes=False, reason=VoteReason.INSUFFICIENT_FUNDS), PrepareAction.TOMBSTONE)
    return EntryPlan(VOTE_YES, PrepareAction.LOCK)


def _entry_balances(entry: BatchEntry, logged: list[LoggedLeg], named: set[UUID]) -> bool:
    """As the single prepare: legs named together sum to zero; one named leg with the live legs held here."""
    amounts = [leg.change for leg in entry.legs]
    if len(entry.legs) == 1:
        amounts += [
            row.change for row in logged if row.account_id not in named and row.state is not ParticipantState.ABORTED
        ]
    return balanced_legs(amounts)
