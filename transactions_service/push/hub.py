"""Subscribers of this process and the fan-out to them; every queue bounded, every cap named."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import structlog

from shared import jsonio
from shared.auth import Principal
from transactions_service.push.notices import Notice, messages_for

log = structlog.get_logger()

DEFAULT_SEND_QUEUE_MAX = 256
DEFAULT_CONNECTIONS_PER_USER_MAX = 8
DEFAULT_SUBSCRIBERS_MAX = 2000
CLOSE_SLOW_CONSUMER = 4008
CLOSE_TOO_MANY_CONNECTIONS = 4029
CLOSE_SERVER_FULL = 1013  # RFC 6455 "try again later"


class SubscriberRefused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(eq=False)
class Subscriber:
    """One socket's view: who it is, which accounts are theirs, and the messages waiting to be sent."""

    principal: Principal
    own_accounts: frozenset[UUID]
    queue_max: int
    queue: asyncio.Queue[str] = field(init=False)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    close_reason: str = ""

    def __post_init__(self) -> None:
        assert self.queue_max > 0, "a bounded, non-empty send queue"
        self.queue = asyncio.Queue(maxsize=self.queue_max)

    @property
    def user(self) -> str:
        return self.principal.subject

    def offer(self, message: dict[str, Any]) -> None:
        """Queue one message; a full queue means the client does not keep up, and it is let go."""
        if self.closing.is_set():
            return
        try:
            self.queue.put_nowait(jsonio.dumps(message))
        except asyncio.QueueFull:
            self.close(CLOSE_SLOW_CONSUMER, f"slow consumer: more than {self.queue_max} messages waiting")

    def close(self, code: int, reason: str) -> None:
        if not self.closing.is_set():
            self.close_code, self.close_reason = code, reason
            self.closing.set()


@dataclass
class Hub:
    send_queue_max: int = DEFAULT_SEND_QUEUE_MAX
    connections_per_user_max: int = DEFAULT_CONNECTIONS_PER_USER_MAX
    subscribers_max: int = DEFAULT_SUBSCRIBERS_MAX
    subscribers: set[Subscriber] = field(default_factory=set)
    per_user: Counter[str] = field(default_factory=Counter)

    def join(self, principal: Principal, own_accounts: frozenset[UUID]) -> Subscriber:
        if len(self.subscribers) >= self.subscribers_max:
            raise SubscriberRefused(CLOSE_SERVER_FULL, f"server full: {self.subscribers_max} sockets open")
        if self.per_user[principal.subject] >= self.connections_per_user_max:
            raise SubscriberRefused(
                CLOSE_TOO_MANY_CONNECTIONS, f"too many connections: at most {self.connections_per_user_max} per user"
            )
        subscriber = Subscriber(principal, own_accounts, self.send_queue_max)
        self.subscribers.add(subscriber)
        self.per_user[principal.subject] += 1
        return subscriber

    def leave(self, subscriber: Subscriber) -> None:
        if subscriber in self.subscribers:
            self.subscribers.remove(subscriber)
            self.per_user[subscriber.user] -= 1
            if self.per_user[subscriber.user] <= 0:
                del self.per_user[subscriber.user]

    def publish(self, notice: Notice) -> None:
        for subscriber in list(self.subscribers):
            for message in messages_for(
                notice, staff=subscriber.principal.is_staff, own_accounts=subscriber.own_accounts
            ):
                subscriber.offer(message)

    def broadcast(self, message: dict[str, Any]) -> None:
        for subscriber in list(self.subscribers):
            subscriber.offer(message)
