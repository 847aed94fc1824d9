"""The participants as the coordinator sees them: which one holds an account, and the messages sent to it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog

from shared.http_client import PeerResponse, PeerUnavailableError, ServiceClient
from transactions_service.domain import Leg
from transactions_service.protocol import AbortReason, TransferStatus, Vote

log = structlog.get_logger()

ACCOUNTS_PARTICIPANT = "accounts"
DEFAULT_PREPARE_TIMEOUT_S = 5.0
DEFAULT_DECISION_TIMEOUT_S = 5.0
# A transfer has two legs, so at most two participants hear its decision.
PARTICIPANTS_PER_TRANSFER_MAX = 2
# The participant's bound on the entries of one batch message (accounts_service/api_schema.py): a larger
# batch is refused whole, so the coordinator's BATCH_MAX_TRANSFERS may not exceed it.
PARTICIPANT_BATCH_MAX = 256
PREPARE_BATCH_PATH = "/2pc/prepare-batch"
DECISION_BATCH_PATHS = {"committed": "/2pc/commit-batch", "aborted": "/2pc/abort-batch"}


def participant_names(shard_count: int) -> tuple[str, ...]:
    assert shard_count >= 1, "at least one participant"
    if shard_count == 1:
        return (ACCOUNTS_PARTICIPANT,)
    return tuple(f"{ACCOUNTS_PARTICIPANT}-{index}" for index in range(shard_count))


def participant_for(account_id: UUID, names: tuple[str, ...]) -> str:
    """The one place that routes an account to the participant holding it.

    One accounts_service holds every account by default. With several (ACCOUNTS_SHARD_URLS), an
    account lives on shard `account_id mod N`; changing how accounts are placed changes only this.
    """
    return names[account_id.int % len(names)]


def plan(legs: tuple[Leg, ...], names: tuple[str, ...]) -> list[tuple[str, list[Leg]]]:
    """Legs grouped by participant, in global account-id order, so prepares never wait in a cycle."""
    groups: dict[str, list[Leg]] = {}
    for leg in sorted(legs, key=lambda leg: leg.account_id):
        groups.setdefault(participant_for(leg.account_id, names), []).append(leg)
    return list(groups.items())


def _changes(legs: list[Leg]) -> list[dict]:
    return [{"account_id": str(leg.account_id), "change": leg.change} for leg in legs]


def _entries(transfers: list[tuple[UUID, list[Leg]]]) -> dict[str, list[dict]]:
    """A batch message's body: one entry per transfer, each the single route's body."""
    assert 1 <= len(transfers) <= PARTICIPANT_BATCH_MAX, "a batch message the participant takes"
    return {
        "transfers": [
            {"transaction_id": str(transaction_id), "changes": _changes(legs)} for transaction_id, legs in transfers
        ]
    }


def _answers_in_order(body: Any, field: str, transfers: list[tuple[UUID, list[Leg]]]) -> list[dict] | None:
    """The batch answer's entries when there is one per transfer, in order, naming each; None otherwise."""
    data = body.get("data") if isinstance(body, dict) else None
    answers = data.get(field) if isinstance(data, dict) else None
    if not isinstance(answers, list) or len(answers) != len(transfers):
        return None
    named = all(
        isinstance(answer, dict) and answer.get("transaction_id") == str(transaction_id)
        for answer, (transaction_id, _) in zip(answers, transfers, strict=True)
    )
    return answers if named else None


@dataclass
class Participants:
    clients: dict[str, ServiceClient]
    prepare_timeout_s: float = DEFAULT_PREPARE_TIMEOUT_S
    decision_timeout_s: float = DEFAULT_DECISION_TIMEOUT_S

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.clients)

    def plan(self, legs: tuple[Leg, ...]) -> list[tuple[str, list[Leg]]]:
        return plan(legs, self.names)

    @property
    def decision_sends_max_s(self) -> float:
        """The longest one completion attempt's sends can take: one bounded send per participant, in turn."""
        return min(len(self.clients), PARTICIPANTS_PER_TRANSFER_MAX) * self.decision_timeout_s

    async def prepare(self, participant: str, transaction_id: UUID, legs: list[Leg]) -> tuple[Vote, int]:
        """Ask one participant to prepare its legs; the vote and how long it took (ms)."""
        started = time.perf_counter()
        try:
            answer = await self.clients[participant].post(
                "/2pc/prepare",
                {"transaction_id": str(transaction_id), "changes": _changes(legs)},
                timeout_s=self.prepare_timeout_s,
            )
        except PeerUnavailableError as error:
            log.warning(
                "prepare_unanswered",
                transaction_id=str(transaction_id),
                participant=participant,
                details={"error": str(error)},
            )
            reason = AbortReason.PREPARE_TIMEOUT if "Timeout" in str(error) else AbortReason.PARTICIPANT_UNAVAILABLE
            return Vote(participant, answered=False, reason=reason), _elapsed_ms(started)
        return _vote_from_answer(participant, answer.status, answer.body), _elapsed_ms(started)

    async def send_decision(
        self, participant: str, transaction_id: UUID, status: TransferStatus, legs: list[Leg]
    ) -> str | None:
        """Send commit or abort; None when acknowledged, else why not."""
        assert status is not TransferStatus.PREPARING, "only a decision is sent"
        path = "/2pc/commit" if status is TransferStatus.COMMITTED else "/2pc/abort"
        try:
            answer = await self.clients[participant].post(
                path,
                {"transaction_id": str(transaction_id), "changes": _changes(legs)},
                timeout_s=self.decision_timeout_s,
            )
        except PeerUnavailableError as error:
            return str(error)
        if answer.status != 200:
            log.error(
                "decision_refused",
                transaction_id=str(transaction_id),
                participant=participant,
                details={"status": answer.status, "body": answer.body},
            )
            refusal = answer.body.get("error") if isinstance(answer.body, dict) else None
            return f"HTTP {answer.status}: {refusal.get('code') if isinstance(refusal, dict) else None}"
        return None

    async def prepare_batch(self, participant: str, transfers: list[tuple[UUID, list[Leg]]]) -> tuple[list[Vote], int]:
        """Ask one participant to prepare the legs of many transfers in one message; a vote per transfer,
        in order, and how long the message took (ms). No answer is no vote for every transfer of it."""
        started = time.perf_counter()
        try:
            answer = await self.clients[participant].post(
                PREPARE_BATCH_PATH, _entries(transfers), timeout_s=self.prepare_timeout_s
            )
        except PeerUnavailableError as error:
            log.warning(
                "prepare_batch_unanswered",
                participant=participant,
                details={"error": str(error), "transfers": len(transfers)},
            )
            return _unanswered(participant, error, transfers), _elapsed_ms(started)
        votes = _batch_answers("prepare_batch_refused", participant, answer, "votes", transfers)
        if votes is None:  # it may have locked them before it failed: no vote (see _vote_from_answer)
            return [Vote(participant, answered=False, reason=AbortReason.PARTICIPANT_ERROR) for _ in transfers], (
                _elapsed_ms(started)
            )
        return [_vote_of(participant, vote.get("vote"), vote.get("reason")) for vote in votes], _elapsed_ms(started)

    async def send_decision_batch(
        self,
        participant: str,
        status: TransferStatus,
        transfers: list[tuple[UUID, list[Leg]]],
        prepares: list[tuple[UUID, list[Leg]]] | None = None,
    ) -> tuple[list[str | None], Sequence[Vote | None]]:
        """Send one decision for many transfers in one message; per transfer None when acknowledged, else why
        not. `prepares` ride the same message (the participant runs them after the decisions): a vote each, or
        None for one the participant deferred (it met a lock: nothing written, to be sent again as a prepare).

        A rider whose vote did not come back (no answer, or an answer without its vote) is unanswered: it
        may be locked there, so the coordinator aborts it and tells the participant, as recovery would."""
        assert status is not TransferStatus.PREPARING, "only a decision is sent"
        prepares = prepares or []
        body = _entries(transfers) | ({"prepare": _entries(prepares)["transfers"]} if prepares else {})
        try:
            answer = await self.clients[participant].post(
                DECISION_BATCH_PATHS[status.value], body, timeout_s=self.decision_timeout_s
            )
        except PeerUnavailableError as error:
            return [str(error) for _ in transfers], _unanswered(participant, error, prepares)
        results = _batch_answers("decision_batch_refused", participant, answer, "results", transfers)
        rider_votes = _rider_votes(participant, answer, prepares)
        if results is None:
            refusal = answer.body.get("error") if isinstance(answer.body, dict) else None
            failure = f"HTTP {answer.status}: {refusal.get('code') if isinstance(refusal, dict) else None}"
            return [failure for _ in transfers], rider_votes
        return [_acknowledgement(participant, result) for result in results], rider_votes


def _rider_votes(participant: str, answer: PeerResponse, prepares: list[tuple[UUID, list[Leg]]]) -> list[Vote | None]:
    """The votes on the prepares that rode a decision message; none back (an error answer, or the
    participant's database unavailable for them) is no vote: each may be locked there."""
    if not prepares:
        return []
    votes = _answers_in_order(answer.body, "votes", prepares) if answer.status == 200 else None
    if votes is None:
        log.warning("riders_unanswered", participant=participant, details={"transfers": len(prepares)})
        return [Vote(participant, answered=False, reason=AbortReason.PARTICIPANT_ERROR) for _ in prepares]
    return [
        None if vote.get("vote") == RIDER_DEFERRED else _vote_of(participant, vote.get("vote"), vote.get("reason"))
        for vote in votes
    ]


def _unanswered(participant: str, error: PeerUnavailableError, transfers: list[tuple[UUID, list[Leg]]]) -> list[Vote]:
    """No vote for each transfer of a message that got no answer (a timeout, or the participant unreachable)."""
    reason = AbortReason.PREPARE_TIMEOUT if "Timeout" in str(error) else AbortReason.PARTICIPANT_UNAVAILABLE
    return [Vote(participant, answered=False, reason=reason) for _ in transfers]


def _batch_answers(
    refused_event: str, participant: str, answer: PeerResponse, key: str, transfers: list[tuple[UUID, list[Leg]]]
) -> list[dict] | None:
    """A batch answer's entries, one per transfer in order; None (and an error line) when it is not that."""
    entries = _answers_in_order(answer.body, key, transfers) if answer.status == 200 else None
    if entries is None:
        log.error(
            refused_event,
            participant=participant,
            details={"status": answer.status, "body": answer.body, "transfers": len(transfers)},
        )
    return entries


# A rider's vote when it met a lock at the participant: nothing written there (accounts_service/api_schema.py).
RIDER_DEFERRED = "deferred"

# The one place the participant's vote reasons (its side of the wire) become the coordinator's abort reasons.
REASON_OF_PARTICIPANT_NO: dict[object, AbortReason] = {
    "insufficient_funds": AbortReason.INSUFFICIENT_FUNDS,
    "account_busy": AbortReason.ACCOUNT_BUSY,
    "account_not_found": AbortReason.ACCOUNT_NOT_FOUND,
    "already_aborted": AbortReason.ALREADY_ABORTED,
    "invalid_legs": AbortReason.PARTICIPANT_ERROR,  # a batch entry whose legs do not balance: a coordinator bug
}


def _vote_from_answer(participant: str, status: int, body: dict) -> Vote:
    """A refused or malformed answer is no vote, not a NO: the participant may have locked the accounts before
    it failed (a 500 after its prepare was written), so the coordinator keeps holding them until the abort is
    acknowledged, as for a prepare that timed out. The transfer aborts either way."""
    data = body.get("data") if isinstance(body, dict) else None
    if status != 200 or not isinstance(data, dict):
        return Vote(participant, answered=False, reason=AbortReason.PARTICIPANT_ERROR)
    return _vote_of(participant, data.get("vote"), data.get("reason"))


def _vote_of(participant: str, vote: object, reason: object) -> Vote:
    """A participant's vote; a NO with a reason we do not know (e.g. invalid_legs) is a participant error, and
    a vote that is neither yes nor no is no vote (what it locked is unknown)."""
    if vote == "yes":
        return Vote(participant, answered=True, yes=True)
    if vote == "no":
        return Vote(
            participant, answered=True, reason=REASON_OF_PARTICIPANT_NO.get(reason, AbortReason.PARTICIPANT_ERROR)
        )
    return Vote(participant, answered=False, reason=AbortReason.PARTICIPANT_ERROR)


def _acknowledgement(participant: str, result: dict) -> str | None:
    """None for an acknowledged entry; else the code of the error the participant answered for it."""
    if result.get("acknowledged") is True:
        return None
    error = result.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    log.error(
        "decision_refused",
        transaction_id=result.get("transaction_id"),
        participant=participant,
        details={"error": error},
    )
    return f"refused: {code}"


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
