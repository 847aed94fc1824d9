"""A hypothesis state machine over the 2PC participant: any order of protocol messages, duplicates, late
prepares and crashes, on one pair of accounts, against a model of what a correct coordinator decided.

The machine owns its event loop (created in __init__, closed in teardown) and runs each rule's coroutine on
it; it does not use pytest-asyncio. A "crash" disposes the engine and opens a new one, so every fact the
invariants check must come back from the database.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import text

from accounts_service import participant
from accounts_service.domain import Leg, Vote, VoteReason
from shared.database import create_engine
from shared.errors import ConflictError
from tests.integration.test_participant import account_states, open_accounts, transfer_changes

OPENING_BALANCES = (Decimal(100), Decimal(60))
BUSY_WAIT_S = 0.01
# Half the amounts fit any opening balance's range, half exceed 100.00 (hypothesis would favour small ones).
AMOUNTS = st.builds(
    lambda large, cents: Decimal(cents).scaleb(-2) + (100 if large else 0),
    st.booleans(),
    st.integers(min_value=1, max_value=10_000),
)
PICK = st.integers(min_value=0, max_value=1_000)
# Hypothesis favours the first rules; these caps leave most of each run's steps to fresh transfers.
MAX_EARLY_ABORTS = 2
MAX_CONTRADICTIONS = 3
MACHINE_SETTINGS = settings(
    max_examples=25, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

_LOG_STATE = text("""
    SELECT state FROM participant_log WHERE transaction_id = :transaction_id AND account_id = :account_id""")

COMMIT = "commit"
ABORT = "abort"


@dataclass
class ModelTransfer:
    """What the coordinator knows about one transfer: its legs, the first vote it got, what it decided."""

    changes: list[Leg]
    vote: Vote | None = None
    decision: str | None = None

    @property
    def tombstoned(self) -> bool:
        """The participant said NO or was told abort: any later prepare must be NO."""
        return self.decision == ABORT or (self.vote is not None and not self.vote.yes)

    @property
    def holds_locks(self) -> bool:
        return self.vote is not None and self.vote.yes and self.decision is None


class ParticipantMachine(RuleBasedStateMachine):
    database_url: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        assert self.database_url, "set ParticipantMachine.database_url before running"
        self.loop = asyncio.new_event_loop()
        self.engine = create_engine(self.database_url, pool_size=2, max_overflow=2)
        self.accounts: list[UUID] = self.run(open_accounts(self.engine, *OPENING_BALANCES))
        self.balances: dict[UUID, Decimal] = dict(zip(self.accounts, OPENING_BALANCES, strict=True))
        self.transfers: dict[UUID, ModelTransfer] = {}
        self.contradictions_sent = 0

    def run(self, coroutine) -> Any:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        try:
            self.run(self.engine.dispose())
        finally:
            self.loop.close()

    # --- the messages (a subclass may carry them another way, e.g. in batches) -----------------------------------

    async def send_prepare(self, transaction_id: UUID, changes: list[Leg]) -> Vote:
        return await participant.prepare(self.engine, transaction_id, changes, busy_wait_s=BUSY_WAIT_S)

    async def send_commit(self, transaction_id: UUID) -> list[dict[str, Any]]:
        return await participant.commit(self.engine, transaction_id)

    async def send_abort(self, transaction_id: UUID, changes: list[Leg]) -> list[dict[str, Any]]:
        return await participant.abort(self.engine, transaction_id, changes)

    # --- model helpers ---------------------------------------------------------------------------------------

    def _changes(self, forward: bool, amount: Decimal) -> list[Leg]:
        source, destination = self.accounts if forward else reversed(self.accounts)
        return transfer_changes(source, destination, amount)

    def _holder(self) -> UUID | None:
        holders = [tid for tid, transfer in self.transfers.items() if transfer.holds_locks]
        assert len(holders) <= 1, "both accounts are in every transfer, so at most one holds them"
        return holders[0] if holders else None

    def _expected_fresh_vote(self, changes: list[Leg]) -> Vote:
        if self._holder() is not None:
            return Vote(yes=False, reason=VoteReason.ACCOUNT_BUSY)
        if any(self.balances[change.account_id] + change.change < 0 for change in changes):
            return Vote(yes=False, reason=VoteReason.INSUFFICIENT_FUNDS)
        return Vote(yes=True)

    def _pick(self, index: int, wanted) -> tuple[UUID, ModelTransfer]:
        candidates = [(tid, transfer) for tid, transfer in self.transfers.items() if wanted(transfer)]
        return candidates[index % len(candidates)]

    def _any(self, wanted) -> bool:
        return any(wanted(transfer) for transfer in self.transfers.values())

    def _apply_commit(self, transfer: ModelTransfer) -> None:
        for change in transfer.changes:
            self.balances[change.account_id] += change.change

    # --- rules -----------------------------------------------------------------------------------------------

    @rule(forward=st.booleans(), amount=AMOUNTS)
    def prepare(self, forward: bool, amount: Decimal) -> None:
        transaction_id = uuid.uuid4()
        changes = self._changes(forward, amount)
        expected = self._expected_fresh_vote(changes)
        vote = self.run(self.send_prepare(transaction_id, changes))
        assert vote == expected
        self.transfers[transaction_id] = ModelTransfer(changes, vote=vote)

    @precondition(lambda self: self._any(lambda transfer: transfer.vote is not None))
    @rule(index=PICK)
    def duplicate_prepare(self, index: int) -> None:
        transaction_id, transfer = self._pick(index, lambda transfer: transfer.vote is not None)
        vote = self.run(self.send_prepare(transaction_id, transfer.changes))
        if transfer.tombstoned:
            assert vote == Vote(yes=False, reason=VoteReason.ALREADY_ABORTED)
        else:
            assert vote.yes

    @precondition(lambda self: self._any(lambda transfer: transfer.holds_locks))
    @rule(index=PICK)
    def commit(self, index: int) -> None:
        # As a real coordinator: only a transfer whose prepare voted YES, and that is not aborted, commits.
        transaction_id, transfer = self._pick(index, lambda transfer: transfer.holds_locks)
        rows = self.run(self.send_commit(transaction_id))
        assert {row["state"] for row in rows} == {"committed"}
        self._apply_commit(transfer)
        transfer.decision = COMMIT

    @precondition(lambda self: self._any(lambda transfer: transfer.decision is None))
    @rule(index=PICK, with_changes=st.booleans())
    def abort(self, index: int, with_changes: bool) -> None:
        """The coordinator's abort after a NO vote, or after a YES when another participant refused."""
        transaction_id, transfer = self._pick(index, lambda transfer: transfer.decision is None)
        changes = transfer.changes if with_changes else []
        rows = self.run(self.send_abort(transaction_id, changes))
        assert all(row["state"] == "aborted" for row in rows)
        transfer.decision = ABORT

    @precondition(lambda self: sum(transfer.vote is None for transfer in self.transfers.values()) < MAX_EARLY_ABORTS)
    @rule(forward=st.booleans(), amount=AMOUNTS)
    def abort_before_prepare(self, forward: bool, amount: Decimal) -> None:
        """The coordinator gave up (prepare deadline) before this participant ever saw the prepare."""
        transaction_id = uuid.uuid4()
        changes = self._changes(forward, amount)
        rows = self.run(self.send_abort(transaction_id, changes))
        assert {row["account_id"] for row in rows} == set(self.accounts)
        self.transfers[transaction_id] = ModelTransfer(changes, vote=None, decision=ABORT)

    @precondition(lambda self: self._any(lambda transfer: transfer.decision == ABORT))
    @rule(index=PICK)
    def late_prepare_after_abort(self, index: int) -> None:
        transaction_id, transfer = self._pick(index, lambda transfer: transfer.decision == ABORT)
        vote = self.run(self.send_prepare(transaction_id, transfer.changes))
        assert vote == Vote(yes=False, reason=VoteReason.ALREADY_ABORTED)

    @precondition(lambda self: self._any(lambda transfer: transfer.decision is not None))
    @rule(index=PICK)
    def duplicate_decision(self, index: int) -> None:
        transaction_id, transfer = self._pick(index, lambda transfer: transfer.decision is not None)
        if transfer.decision == COMMIT:
            rows = self.run(self.send_commit(transaction_id))
            assert {row["state"] for row in rows} == {"committed"}
        else:
            rows = self.run(self.send_abort(transaction_id, transfer.changes))
            assert {row["state"] for row in rows} == {"aborted"}

    @precondition(
        lambda self: (
            self.contradictions_sent < MAX_CONTRADICTIONS
            and self._any(lambda transfer: transfer.decision is not None or transfer.tombstoned)
        )
    )
    @rule(index=PICK)
    def contradicting_decision_is_refused(self, index: int) -> None:
        """A commit after an abort (or a NO vote), or an abort after a commit, is refused and changes nothing."""
        self.contradictions_sent += 1
        transaction_id, transfer = self._pick(
            index, lambda transfer: transfer.decision is not None or transfer.tombstoned
        )
        with pytest.raises(ConflictError):
            if transfer.decision == COMMIT:
                self.run(self.send_abort(transaction_id, transfer.changes))
            else:
                self.run(self.send_commit(transaction_id))

    @precondition(lambda self: self._any(lambda transfer: transfer.holds_locks))
    @rule()
    def crash(self) -> None:
        """The participant dies and restarts mid-transfer: only what the database holds survives."""
        self.run(self.engine.dispose())
        self.engine = create_engine(self.database_url, pool_size=2, max_overflow=2)

    # --- invariants ------------------------------------------------------------------------------------------
    # One database read per step feeds every check (each a named method, so a failure says which one broke).

    @invariant()
    def protocol_invariants_hold(self) -> None:
        states = self.run(account_states(self.engine, self.accounts))
        self.money_is_conserved(states)
        self.balances_match_the_coordinators_decisions(states)
        self.no_balance_is_negative_even_with_its_pending_change(states)
        self.every_balance_equals_its_committed_ledger(states)
        self.a_lock_names_a_prepared_undecided_transfer(states)

    def money_is_conserved(self, states: dict[UUID, dict[str, Any]]) -> None:
        assert sum(state["balance"] for state in states.values()) == sum(OPENING_BALANCES)

    def balances_match_the_coordinators_decisions(self, states: dict[UUID, dict[str, Any]]) -> None:
        assert {account_id: state["balance"] for account_id, state in states.items()} == self.balances

    def no_balance_is_negative_even_with_its_pending_change(self, states: dict[UUID, dict[str, Any]]) -> None:
        for state in states.values():
            assert state["balance"] >= 0
            assert state["balance"] + (state["pending_change"] or 0) >= 0

    def every_balance_equals_its_committed_ledger(self, states: dict[UUID, dict[str, Any]]) -> None:
        for state in states.values():
            assert state["balance"] == state["ledger_sum"]

    def a_lock_names_a_prepared_undecided_transfer(self, states: dict[UUID, dict[str, Any]]) -> None:
        holder = self._holder()
        for account_id, state in states.items():
            lock = state["transaction_lock"]
            assert lock == holder
            if lock is None:
                assert state["pending_change"] is None
                continue
            transfer = self.transfers[lock]
            assert transfer.holds_locks
            assert state["pending_change"] == next(
                change.change for change in transfer.changes if change.account_id == account_id
            )
            assert self.run(self._log_state(lock, account_id)) == "prepared"

    async def _log_state(self, transaction_id: UUID, account_id: UUID) -> str | None:
        async with self.engine.connect() as connection:
            return (
                await connection.execute(_LOG_STATE, {"transaction_id": transaction_id, "account_id": account_id})
            ).scalar_one_or_none()


def test_participant_state_machine(accounts_db_url: str) -> None:
    ParticipantMachine.database_url = accounts_db_url
    run_state_machine_as_test(ParticipantMachine, settings=MACHINE_SETTINGS)
