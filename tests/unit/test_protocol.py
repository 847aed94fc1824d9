"""The pure protocol rules: the coordinator's decide() and state table, transfer legs, the participant's votes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from accounts_service import domain as participant_domain
from accounts_service.domain import Leg, ParticipantState, VoteReason, in_global_order, vote_from_log
from transactions_service.domain import Transfer, TransferRequest, legs_of, status_of_wire, wire_status
from transactions_service.protocol import (
    ALLOWED_TRANSITIONS,
    AbortReason,
    Decision,
    TransferStatus,
    Vote,
    can_transition,
    decide,
)

FINAL_STATES = (TransferStatus.COMMITTED, TransferStatus.ABORTED)
AMOUNTS = st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal("1000000000"), places=4, allow_nan=False, allow_infinity=False
)
UUIDS = st.uuids()


# --- decide(votes) ---------------------------------------------------------------------------------------------


def yes_vote(participant: str = "accounts") -> Vote:
    return Vote(participant, answered=True, yes=True)


@st.composite
def votes_strategy(draw):
    """A planned participant count and the votes that came back (possibly fewer: the rest never answered)."""
    planned = draw(st.integers(min_value=1, max_value=6))
    count = draw(st.integers(min_value=0, max_value=planned))
    votes = []
    for index in range(count):
        kind = draw(st.sampled_from(["yes", "yes", "no", "silent"]))
        name = f"participant-{index}"
        if kind == "yes":
            votes.append(yes_vote(name))
        elif kind == "no":
            votes.append(Vote(name, answered=True, yes=False, reason=draw(st.sampled_from(AbortReason))))
        else:
            votes.append(
                Vote(
                    name,
                    answered=False,
                    yes=False,
                    reason=draw(st.sampled_from([AbortReason.PREPARE_TIMEOUT, AbortReason.PARTICIPANT_UNAVAILABLE])),
                )
            )
    return votes, planned


@given(votes_strategy())
def test_decide_commits_iff_every_planned_participant_voted_yes(case):
    votes, planned = case
    decision = decide(votes, planned)
    everyone_said_yes = len(votes) == planned and all(vote.yes for vote in votes)
    assert (decision.status is TransferStatus.COMMITTED) == everyone_said_yes
    if everyone_said_yes:
        assert decision.reason is None
        return
    assert decision.status is TransferStatus.ABORTED
    refusals = [vote for vote in votes if not vote.yes]
    if refusals:
        assert decision.reason is refusals[0].reason
    else:
        assert len(votes) < planned
        assert decision.reason is AbortReason.PARTICIPANT_UNAVAILABLE


@given(votes_strategy(), st.randoms())
def test_decide_commits_or_aborts_whatever_order_the_votes_came_in(case, random):
    """Votes arrive in any order; whether money moves depends only on which votes came, never on their order."""
    votes, planned = case
    snapshot = list(votes)
    shuffled = list(votes)
    random.shuffle(shuffled)
    decision = decide(votes, planned)
    assert decide(shuffled, planned).status is decision.status
    assert votes == snapshot, "decide reads its votes and changes none"


@given(st.integers(min_value=1, max_value=6), st.data())
def test_one_no_vetoes_any_number_of_yes(planned, data):
    position = data.draw(st.integers(min_value=0, max_value=planned - 1))
    reason = data.draw(st.sampled_from(AbortReason))
    votes = [yes_vote(f"participant-{index}") for index in range(planned)]
    votes[position] = Vote(f"participant-{position}", answered=True, yes=False, reason=reason)

    assert decide(votes, planned) == Decision(TransferStatus.ABORTED, reason)


@given(st.integers(min_value=1, max_value=6), st.data())
def test_a_participant_that_never_answered_aborts_even_when_every_other_said_yes(planned, data):
    missing = data.draw(st.integers(min_value=0, max_value=planned - 1))
    votes = [yes_vote(f"participant-{index}") for index in range(planned) if index != missing]

    assert decide(votes, planned) == Decision(TransferStatus.ABORTED, AbortReason.PARTICIPANT_UNAVAILABLE)


@given(st.integers(min_value=2, max_value=6), st.data())
def test_a_no_stays_decisive_when_the_late_votes_are_yes(planned, data):
    """A NO decides at once: the votes still to come can only be YES, and none of them can turn it into a commit."""
    arrived = data.draw(st.integers(min_value=1, max_value=planned - 1))
    refusal_at = data.draw(st.integers(min_value=0, max_value=arrived - 1))
    reason = data.draw(st.sampled_from(AbortReason))
    early = [yes_vote(f"participant-{index}") for index in range(arrived)]
    early[refusal_at] = Vote(f"participant-{refusal_at}", answered=True, yes=False, reason=reason)
    everyone = early + [yes_vote(f"participant-{index}") for index in range(arrived, planned)]

    assert decide(early, planned) == Decision(TransferStatus.ABORTED, reason)
    assert decide(everyone, planned) == Decision(TransferStatus.ABORTED, reason)


def test_decide_examples():
    assert decide([yes_vote("a"), yes_vote("b")], 2) == Decision(TransferStatus.COMMITTED)
    assert decide([yes_vote("a")], 2) == Decision(TransferStatus.ABORTED, AbortReason.PARTICIPANT_UNAVAILABLE)
    assert decide([], 1) == Decision(TransferStatus.ABORTED, AbortReason.PARTICIPANT_UNAVAILABLE)
    no_funds = Vote("a", answered=True, yes=False, reason=AbortReason.INSUFFICIENT_FUNDS)
    busy = Vote("b", answered=True, yes=False, reason=AbortReason.ACCOUNT_BUSY)
    assert decide([yes_vote("c"), no_funds, busy], 3) == Decision(
        TransferStatus.ABORTED, AbortReason.INSUFFICIENT_FUNDS
    )
    silent = Vote("a", answered=False, reason=AbortReason.PREPARE_TIMEOUT)
    assert decide([silent, yes_vote("b")], 2) == Decision(TransferStatus.ABORTED, AbortReason.PREPARE_TIMEOUT)


def test_decide_asserts_its_preconditions():
    with pytest.raises(AssertionError):
        decide([], 0)
    with pytest.raises(AssertionError):
        decide([yes_vote("a"), yes_vote("b")], 1)


# --- states and transitions ------------------------------------------------------------------------------------


def test_every_state_has_a_row_in_the_transition_table():
    assert set(ALLOWED_TRANSITIONS) == set(TransferStatus)


def test_final_states_have_no_exits():
    for final in FINAL_STATES:
        assert ALLOWED_TRANSITIONS[final] == frozenset()
        for target in TransferStatus:
            assert not can_transition(final, target)


def test_preparing_goes_only_to_a_decision():
    assert ALLOWED_TRANSITIONS[TransferStatus.PREPARING] == frozenset(FINAL_STATES)
    assert not can_transition(TransferStatus.PREPARING, TransferStatus.PREPARING)
    assert can_transition(TransferStatus.PREPARING, TransferStatus.COMMITTED)
    assert can_transition(TransferStatus.PREPARING, TransferStatus.ABORTED)


def test_no_state_can_return_to_preparing():
    assert all(TransferStatus.PREPARING not in targets for targets in ALLOWED_TRANSITIONS.values())


# --- Vote and Decision invariants ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"answered": False, "yes": True},  # YES without an answer
        {"answered": False, "yes": True, "reason": None},
        {"answered": True, "yes": True, "reason": AbortReason.ACCOUNT_BUSY},  # YES with a reason
        {"answered": True, "yes": False},  # NO without a reason
        {"answered": False, "yes": False},  # silence without a reason
    ],
)
def test_inconsistent_votes_are_refused(arguments):
    with pytest.raises(AssertionError):
        Vote("accounts", **arguments)


def test_consistent_votes_are_accepted():
    assert yes_vote().yes
    assert not Vote("a", answered=True, reason=AbortReason.INSUFFICIENT_FUNDS).yes
    assert not Vote("a", answered=False, reason=AbortReason.PREPARE_TIMEOUT).answered


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (TransferStatus.PREPARING, None),
        (TransferStatus.PREPARING, AbortReason.ACCOUNT_BUSY),
        (TransferStatus.COMMITTED, AbortReason.ACCOUNT_BUSY),
        (TransferStatus.ABORTED, None),
    ],
)
def test_inconsistent_decisions_are_refused(status, reason):
    with pytest.raises(AssertionError):
        Decision(status, reason)


# --- transfer legs and fingerprints ----------------------------------------------------------------------------


@given(UUIDS, UUIDS, AMOUNTS)
def test_legs_move_money_without_creating_any(source, destination, amount):
    assume(source != destination)
    source_leg, destination_leg = legs_of(source, destination, amount)
    assert source_leg.account_id == source
    assert destination_leg.account_id == destination
    assert source_leg.change == -amount
    assert destination_leg.change == amount
    assert source_leg.change + destination_leg.change == 0
    assert TransferRequest(source, destination, amount).legs == (source_leg, destination_leg)


def test_transfer_request_asserts_its_shape():
    account = uuid.uuid4()
    with pytest.raises(AssertionError):
        TransferRequest(account, account, Decimal(1))
    with pytest.raises(AssertionError):
        TransferRequest(account, uuid.uuid4(), Decimal(0))
    with pytest.raises(AssertionError):
        TransferRequest(account, uuid.uuid4(), Decimal(-1))


@given(UUIDS, UUIDS, UUIDS, AMOUNTS, AMOUNTS, st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_fingerprint_changes_with_every_field_and_the_caller(
    source, destination, other, amount, other_amount, caller, other_caller
):
    assume(len({source, destination, other}) == 3)
    request = TransferRequest(source, destination, amount)
    fingerprint = request.fingerprint(caller)
    assert fingerprint == TransferRequest(source, destination, amount).fingerprint(caller)
    assert TransferRequest(other, destination, amount).fingerprint(caller) != fingerprint
    assert TransferRequest(source, other, amount).fingerprint(caller) != fingerprint
    assert TransferRequest(destination, source, amount).fingerprint(caller) != fingerprint
    if other_amount != amount:
        assert TransferRequest(source, destination, other_amount).fingerprint(caller) != fingerprint
    if other_caller != caller:
        assert request.fingerprint(other_caller) != fingerprint


def test_fingerprint_ignores_how_the_amount_is_written():
    source, destination = uuid.uuid4(), uuid.uuid4()
    assert TransferRequest(source, destination, Decimal("10")).fingerprint("alice") == TransferRequest(
        source, destination, Decimal("10.0000")
    ).fingerprint("alice")


# --- the participant's votes -----------------------------------------------------------------------------------


def two_changes() -> list[Leg]:
    return [Leg(uuid.uuid4(), Decimal("-10")), Leg(uuid.uuid4(), Decimal("10"))]


def test_vote_from_log_with_no_record_means_prepare_now():
    assert vote_from_log({}, two_changes()) is None


@pytest.mark.parametrize("state", [ParticipantState.PREPARED, ParticipantState.COMMITTED])
def test_vote_from_log_repeats_yes_when_every_leg_is_prepared_or_committed(state):
    changes = two_changes()
    assert vote_from_log({change.account_id: state for change in changes}, changes) == participant_domain.VOTE_YES


def test_vote_from_log_repeats_yes_for_a_mix_of_prepared_and_committed():
    changes = two_changes()
    states = {changes[0].account_id: ParticipantState.PREPARED, changes[1].account_id: ParticipantState.COMMITTED}
    assert vote_from_log(states, changes).yes


@given(st.lists(st.sampled_from(ParticipantState), min_size=1, max_size=4))
def test_vote_from_log_a_tombstone_anywhere_means_no_forever(states_drawn):
    assume(ParticipantState.ABORTED in states_drawn)
    changes = [Leg(uuid.uuid4(), Decimal(index + 1)) for index in range(len(states_drawn))]
    states = {change.account_id: state for change, state in zip(changes, states_drawn, strict=True)}
    vote = vote_from_log(states, changes)
    assert vote is not None
    assert not vote.yes
    assert vote.reason is VoteReason.ALREADY_ABORTED


def test_vote_from_log_a_partial_record_means_prepare_now():
    changes = two_changes()
    assert vote_from_log({changes[0].account_id: ParticipantState.PREPARED}, changes) is None


def _leg(change: Decimal, *, exists=True, balance=Decimal(100), locked_by=None, earlier=None):
    return participant_domain.LegState(
        Leg(uuid.uuid4(), change), exists, balance if exists else None, locked_by, earlier
    )


@pytest.mark.parametrize(
    "legs,locked,reason",
    [
        ([_leg(Decimal(-10)), _leg(Decimal(10))], 2, None),
        ([_leg(Decimal(-10)), _leg(Decimal(10), exists=False)], 0, VoteReason.ACCOUNT_NOT_FOUND),
        ([_leg(Decimal(-10), locked_by=uuid.uuid4()), _leg(Decimal(10))], 0, VoteReason.ACCOUNT_BUSY),
        ([_leg(Decimal(-500)), _leg(Decimal(500))], 0, VoteReason.INSUFFICIENT_FUNDS),
        # missing beats busy beats poor: the most permanent reason is the one reported
        (
            [_leg(Decimal(-500), locked_by=uuid.uuid4()), _leg(Decimal(500), exists=False)],
            0,
            VoteReason.ACCOUNT_NOT_FOUND,
        ),
        (
            [
                _leg(Decimal(-10), earlier=ParticipantState.PREPARED),
                _leg(Decimal(10), earlier=ParticipantState.PREPARED),
            ],
            0,
            None,
        ),
        ([_leg(Decimal(-10), earlier=ParticipantState.ABORTED), _leg(Decimal(10))], 0, VoteReason.ALREADY_ABORTED),
    ],
)
def test_prepare_vote(legs, locked, reason):
    vote = participant_domain.prepare_vote(legs, locked)
    assert vote.reason is reason
    assert vote.yes == (reason is None)


def test_prepare_vote_refuses_a_partial_lock():
    with pytest.raises(AssertionError):
        participant_domain.prepare_vote([_leg(Decimal(-10)), _leg(Decimal(10))], 1)


@given(st.lists(UUIDS, min_size=1, max_size=8, unique=True), st.randoms())
def test_in_global_order_sorts_by_account_and_keeps_every_change(account_ids, random):
    changes = [Leg(account_id, Decimal(index + 1)) for index, account_id in enumerate(account_ids)]
    random.shuffle(changes)
    ordered = in_global_order(changes)
    assert [change.account_id for change in ordered] == sorted(account_ids)
    assert sorted(ordered, key=id) == sorted(changes, key=id)
    assert in_global_order(list(reversed(changes))) == ordered


def test_in_global_order_refuses_two_changes_on_one_account():
    account = uuid.uuid4()
    with pytest.raises(AssertionError):
        in_global_order([Leg(account, Decimal(1)), Leg(account, Decimal(-1))])


def test_participant_vote_and_change_assert_their_shape():
    with pytest.raises(AssertionError):
        participant_domain.Vote(yes=True, reason=VoteReason.ACCOUNT_BUSY)
    with pytest.raises(AssertionError):
        participant_domain.Vote(yes=False)
    with pytest.raises(AssertionError):
        Leg(uuid.uuid4(), Decimal(0))
    with pytest.raises(AssertionError):
        Leg(uuid.uuid4(), 5)  # type: ignore[arg-type]


def test_a_request_repeats_a_transfer_only_under_the_same_caller_body_and_name():
    source, destination, name = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    unnamed = TransferRequest(source, destination, Decimal("10"))
    first = stored_transfer(name, unnamed.fingerprint("alice"))
    assert TransferRequest(source, destination, Decimal("10.00"), name).repeats(first, "alice")
    assert unnamed.repeats(first, "alice")  # met on its Idempotency-Key
    assert not TransferRequest(source, destination, Decimal("10"), uuid.uuid4()).repeats(first, "alice")
    assert not TransferRequest(source, destination, Decimal("11"), name).repeats(first, "alice")
    assert not TransferRequest(source, destination, Decimal("10"), name).repeats(first, "bob")


def stored_transfer(transaction_id: uuid.UUID, fingerprint: str) -> Transfer:
    now = datetime.now(UTC)
    return Transfer(
        transaction_id,
        uuid.uuid4(),
        uuid.uuid4(),
        Decimal(1),
        TransferStatus.COMMITTED,
        None,
        None,
        fingerprint,
        "alice",
        None,
        now,
        now,
        now,
        None,
    )


@pytest.mark.parametrize(
    "status, wire",
    [
        (TransferStatus.PREPARING, "pending"),
        (TransferStatus.COMMITTED, "committed"),
        (TransferStatus.ABORTED, "aborted"),
    ],
)
def test_the_wire_calls_an_undecided_transfer_pending(status, wire):
    assert wire_status(status) == wire
    assert status_of_wire(wire) is status
    assert status_of_wire(status.value) is status  # preparing stays an alias


def test_an_unknown_wire_status_is_refused():
    with pytest.raises(ValueError):
        status_of_wire("completed")


def test_every_participant_vote_reason_maps_to_one_coordinator_abort_reason() -> None:
    from accounts_service.domain import VoteReason as ParticipantVoteReason
    from transactions_service.participants import REASON_OF_PARTICIPANT_NO

    assert set(REASON_OF_PARTICIPANT_NO) == {reason.value for reason in ParticipantVoteReason}
    assert all(isinstance(reason, AbortReason) for reason in REASON_OF_PARTICIPANT_NO.values())


def test_a_customer_sees_no_login_name_nor_host_in_an_event():
    from transactions_service.domain import customer_event_view

    event = {
        "event_type": "ack_failed",
        "participant": "accounts",
        "details": {
            "error": "POST /2pc/commit: ClientConnectorError: Cannot connect to host accounts-service:3002",
            "requested_by": "alice",
            "status": "committed",
            "amount": "5.00",
        },
    }
    shown = customer_event_view(event)
    assert shown["details"] == {"status": "committed", "amount": "5.00"}
    assert shown["participant"] == "accounts" and event["details"]["requested_by"] == "alice"  # the log is kept
