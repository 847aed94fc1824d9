"""The participants as the coordinator sees them: which one holds an account, and the messages sent to it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from uuid import UUID

import structlog

from shared.http_client import PeerUnavailableError, ServiceClient
from transactions_service.domain import Leg
from transactions_service.protocol import AbortReason, TransferStatus, Vote

log = structlog.get_logger()

ACCOUNTS_PARTICIPANT = "accounts"
DEFAULT_PREPARE_TIMEOUT_S = 5.0
DEFAULT_DECISION_TIMEOUT_S = 5.0
# A transfer has two legs, so at most two participants hear its decision.
PARTICIPANTS_PER_TRANSFER_MAX = 2


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

    def client_for(self, account_id: UUID) -> ServiceClient:
        """The accounts service that holds this account (for reads such as ownership checks)."""
        return self.clients[participant_for(account_id, self.names)]

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
            error = answer.body.get("error") if isinstance(answer.body, dict) else None
            return f"HTTP {answer.status}: {error.get('code') if isinstance(error, dict) else None}"
        return None


# The one place the participant's vote reasons (its side of the wire) become the coordinator's abort reasons.
REASON_OF_PARTICIPANT_NO: dict[object, AbortReason] = {
    "insufficient_funds": AbortReason.INSUFFICIENT_FUNDS,
    "account_busy": AbortReason.ACCOUNT_BUSY,
    "account_not_found": AbortReason.ACCOUNT_NOT_FOUND,
    "already_aborted": AbortReason.ALREADY_ABORTED,
    "invalid_legs": AbortReason.PARTICIPANT_ERROR,  # a batch entry whose legs do not balance: a coordinator bug
}


def _vote_from_answer(participant: str, status: int, body: dict) -> Vote:
    data = body.get("data") if isinstance(body, dict) and isinstance(body.get("data"), dict) else {}
    if status == 200 and data.get("vote") == "yes":
        return Vote(participant, answered=True, yes=True)
    if status == 200 and data.get("vote") == "no":
        reason = REASON_OF_PARTICIPANT_NO.get(data.get("reason"), AbortReason.PARTICIPANT_ERROR)
        return Vote(participant, answered=True, reason=reason)
    return Vote(participant, answered=True, reason=AbortReason.PARTICIPANT_ERROR)


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
