"""The coordinator's protocol rules, pure: states and their transitions, votes, and decide(votes).

A transfer is `preparing` until decided `committed` or `aborted` (final, never changed), and is
`completed` (a separate mark, completed_at) once every participant has acknowledged the decision.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TransferStatus(enum.StrEnum):
    PREPARING = "preparing"
    COMMITTED = "committed"
    ABORTED = "aborted"


ALLOWED_TRANSITIONS: dict[TransferStatus, frozenset[TransferStatus]] = {
    TransferStatus.PREPARING: frozenset({TransferStatus.COMMITTED, TransferStatus.ABORTED}),
    TransferStatus.COMMITTED: frozenset(),
    TransferStatus.ABORTED: frozenset(),
}


def can_transition(current: TransferStatus, new: TransferStatus) -> bool:
    return new in ALLOWED_TRANSITIONS[current]


class AbortReason(enum.StrEnum):
    INSUFFICIENT_FUNDS = "insufficient_funds"
    ACCOUNT_BUSY = "account_busy"
    ACCOUNT_NOT_FOUND = "account_not_found"
    ALREADY_ABORTED = "already_aborted"
    PARTICIPANT_UNAVAILABLE = "participant_unavailable"
    PREPARE_TIMEOUT = "prepare_timeout"
    PARTICIPANT_ERROR = "participant_error"


# The API error code a client sees for each abort reason (the original system's codes).
ERROR_CODE_BY_REASON: dict[AbortReason, str] = {
    AbortReason.INSUFFICIENT_FUNDS: "INSUFFICIENT_FUNDS",
    AbortReason.ACCOUNT_BUSY: "ACCOUNT_BUSY",
    AbortReason.ACCOUNT_NOT_FOUND: "NOT_FOUND",
    AbortReason.ALREADY_ABORTED: "TRANSACTION_ABORTED",
    AbortReason.PARTICIPANT_UNAVAILABLE: "SERVICE_UNAVAILABLE",
    AbortReason.PREPARE_TIMEOUT: "SERVICE_UNAVAILABLE",
    AbortReason.PARTICIPANT_ERROR: "SERVICE_UNAVAILABLE",
}


@dataclass(frozen=True, slots=True)
class Vote:
    """One participant's answer to prepare; `answered` is False when no answer came by the deadline."""

    participant: str
    answered: bool
    yes: bool = False
    reason: AbortReason | None = None

    def __post_init__(self) -> None:
        assert not (self.yes and not self.answered), "a YES vote is an answer"
        assert self.yes == (self.reason is None), "a NO (or missing) vote has a reason, a YES none"


@dataclass(frozen=True, slots=True)
class Decision:
    status: TransferStatus
    reason: AbortReason | None = None

    def __post_init__(self) -> None:
        assert can_transition(TransferStatus.PREPARING, self.status), "a decision is commit or abort"
        assert (self.status is TransferStatus.ABORTED) == (self.reason is not None), "only an abort has a reason"


def decide(votes: list[Vote], planned_participants: int) -> Decision:
    """Commit only when every planned participant answered YES; otherwise abort with the first NO's reason."""
    assert planned_participants > 0, "a transfer has at least one participant"
    assert len(votes) <= planned_participants, "at most one vote per participant"
    for vote in votes:
        if not vote.yes:
            return Decision(TransferStatus.ABORTED, vote.reason)
    if len(votes) < planned_participants:
        return Decision(TransferStatus.ABORTED, AbortReason.PARTICIPANT_UNAVAILABLE)
    return Decision(TransferStatus.COMMITTED)


class EventType(enum.StrEnum):
    """The protocol events appended to a transfer's log."""

    ACCEPTED = "accepted"
    PREPARE_SENT = "prepare_sent"
    VOTE = "vote"
    DECISION = "decision"
    DECISION_SENT = "decision_sent"
    ACKNOWLEDGED = "acknowledged"
    ACK_FAILED = "ack_failed"
    COMPLETED = "completed"
