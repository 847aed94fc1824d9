"""Bounds the coordinator and the accounts service each name on their side of the wire: they must agree,
or the participant refuses whole what the coordinator sends."""

from __future__ import annotations

from accounts_service import participant_batch
from accounts_service import service as accounts
from transactions_service import access, participants


def test_a_batch_message_the_coordinator_may_send_is_one_the_participant_takes() -> None:
    assert participants.PARTICIPANT_BATCH_MAX == participant_batch.PARTICIPANT_BATCH_MAX


def test_an_owner_lookup_the_coordinator_may_send_is_one_the_accounts_service_takes() -> None:
    assert access.OWNER_LOOKUP_MAX == accounts.OWNER_LOOKUP_MAX
