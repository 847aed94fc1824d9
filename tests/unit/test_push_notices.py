"""Who hears what on the push channel (pure routing), and the bounds of one subscriber's queue."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest

from shared import jsonio
from shared.auth import Principal
from transactions_service.push.hub import CLOSE_SLOW_CONSUMER, CLOSE_TOO_MANY_CONNECTIONS, Hub, SubscriberRefused
from transactions_service.push.listener import ListenerSettings, reconnect_delay_s
from transactions_service.push.notices import NoticeError, messages_for, parse_notice

SOURCE, DESTINATION, ELSEWHERE = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def payload(*event_types: str, status: str = "committed", amount: str = "25.0000") -> str:
    return jsonio.dumps(
        {
            "transaction_id": str(uuid.uuid4()),
            "status": status,
            "reason": None,
            "source_account_id": str(SOURCE),
            "destination_account_id": str(DESTINATION),
            "amount": amount,
            "events": [
                {"event_id": index, "event_type": kind, "details": {}} for index, kind in enumerate(event_types)
            ],
        }
    )


def test_the_amount_stays_exact_and_a_decision_tells_each_own_account_its_side() -> None:
    notice = parse_notice(payload("vote", "decision"))
    assert notice.amount == Decimal("25.0000") and str(notice.amount) == "25.0000"
    debit = messages_for(notice, staff=False, own_accounts=frozenset({SOURCE}))
    both = messages_for(notice, staff=False, own_accounts=frozenset({SOURCE, DESTINATION}))
    assert [message["type"] for message in debit] == ["protocol", "transfer"]
    assert debit[1]["direction"] == "debit" and debit[1]["counterparty_account_id"] == DESTINATION
    assert [message["direction"] for message in both[1:]] == ["debit", "credit"]


def test_a_stranger_hears_nothing_staff_hear_every_event_and_no_decision_means_no_transfer_notice() -> None:
    decided, prepared = parse_notice(payload("decision")), parse_notice(payload("prepare_sent"))
    assert messages_for(decided, staff=False, own_accounts=frozenset({ELSEWHERE})) == []
    assert [message["type"] for message in messages_for(decided, staff=True, own_accounts=frozenset())] == ["protocol"]
    assert [message["type"] for message in messages_for(prepared, staff=False, own_accounts=frozenset({SOURCE}))] == [
        "protocol"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{}",
        '{"transaction_id": "x", "status": "committed", "events": []}',
        payload("decision", amount="lots"),
    ],
)
def test_an_unreadable_notice_is_refused(text: str) -> None:
    with pytest.raises(NoticeError):
        parse_notice(text)


async def test_a_full_queue_closes_its_subscriber_4008_and_a_user_has_a_socket_cap() -> None:
    hub = Hub(send_queue_max=2, connections_per_user_max=1)
    teller = Principal("teller", None, "teller")
    subscriber = hub.join(teller, frozenset())
    with pytest.raises(SubscriberRefused) as refused:
        hub.join(teller, frozenset())
    assert refused.value.code == CLOSE_TOO_MANY_CONNECTIONS
    for _ in range(3):
        hub.publish(parse_notice(payload("accepted")))
    assert subscriber.closing.is_set() and subscriber.close_code == CLOSE_SLOW_CONSUMER
    hub.leave(subscriber)
    assert hub.join(teller, frozenset()) is not subscriber, "leaving frees the user's slot"
    await asyncio.sleep(0)


def test_the_listener_backs_off_exponentially_up_to_its_bound() -> None:
    settings = ListenerSettings(reconnect_first_s=0.2, reconnect_max_s=10)
    assert [reconnect_delay_s(failures, settings) for failures in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert reconnect_delay_s(1000, settings) == 10
