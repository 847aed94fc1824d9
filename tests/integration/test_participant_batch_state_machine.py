"""The participant state machine again, with its messages carried by the batch routes (every other message,
so single and batch messages of one transfer mix): the same model, the same invariants, the same answers.

A batch answer is turned back into the single route's: a vote, the transfer's log rows, or the ConflictError
the single route would have raised.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hypothesis.stateful import run_state_machine_as_test

from accounts_service import participant, participant_batch
from accounts_service.domain import BatchEntry, Leg, Vote, in_global_order
from accounts_service.participant_batch import DecisionEntry, DecisionResult
from tests.integration.test_participant_state_machine import BUSY_WAIT_S, MACHINE_SETTINGS, ParticipantMachine


class BatchParticipantMachine(ParticipantMachine):
    def __init__(self) -> None:
        super().__init__()
        self.messages_sent = 0

    def _in_a_batch(self) -> bool:
        self.messages_sent += 1
        return self.messages_sent % 2 == 1

    async def send_prepare(self, transaction_id: UUID, changes: list[Leg]) -> Vote:
        if not self._in_a_batch():
            return await super().send_prepare(transaction_id, changes)
        entries = [BatchEntry(transaction_id, tuple(in_global_order(changes)))]
        (vote,) = await participant_batch.prepare_batch(self.engine, entries, busy_wait_s=BUSY_WAIT_S)
        return vote

    async def send_commit(self, transaction_id: UUID) -> list[dict[str, Any]]:
        if not self._in_a_batch():
            return await super().send_commit(transaction_id)
        (result,) = await participant_batch.commit_batch(self.engine, [DecisionEntry(transaction_id, ())])
        return await self._answer(result)

    async def send_abort(self, transaction_id: UUID, changes: list[Leg]) -> list[dict[str, Any]]:
        if not self._in_a_batch():
            return await super().send_abort(transaction_id, changes)
        (result,) = await participant_batch.abort_batch(self.engine, [DecisionEntry(transaction_id, tuple(changes))])
        return await self._answer(result)

    async def _answer(self, result: DecisionResult) -> list[dict[str, Any]]:
        if result.error is not None:
            raise result.error
        return await participant.transfer_state(self.engine, result.transaction_id)


def test_participant_state_machine_with_batch_messages(accounts_db_url: str) -> None:
    BatchParticipantMachine.database_url = accounts_db_url
    run_state_machine_as_test(BatchParticipantMachine, settings=MACHINE_SETTINGS)
