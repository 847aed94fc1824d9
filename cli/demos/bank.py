"""What the demos do to the bank, over HTTP with staff and customer tokens: fresh accounts, admin
adjustments, the racy withdrawal, transfers fired together, and the books read back afterwards.

The demos open their own accounts every run, so they never disturb the demo customers' seeded
accounts and always start from known balances.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from cli.core.client import Client, Reply
from cli.core.config import Config
from cli.core.errors import AuthError, CliError, UnavailableError
from cli.core.tokens import DEMO_IDENTITIES, DemoIdentity
from cli.core.transfers import TransferOutcome, send_transfer

DEMO_PASSWORDS = {"alice": "alice123", "bob": "bob123", "carol": "carol123", "teller": "teller123", "admin": "admin123"}
DEMO_TOKEN_TTL_S = 3600
SETTLE_TIMEOUT_S = 15.0
SETTLE_POLL_S = 0.1
LEDGER_PAGE = 500
MAX_LEDGER_PAGES = 100
Result = TypeVar("Result")


@dataclass(frozen=True)
class Attempt:
    """One transfer the demo sent: its outcome, or why none is known."""

    source: UUID
    destination: UUID
    amount: Decimal
    outcome: TransferOutcome | None
    problem: str | None = None

    @property
    def committed(self) -> bool:
        return self.outcome is not None and self.outcome.committed

    @property
    def label(self) -> str:
        if self.outcome is None:
            return f"unknown ({self.problem})"
        return self.outcome.status if self.outcome.committed else f"aborted: {self.outcome.reason}"


@dataclass(frozen=True)
class AccountState:
    account_id: UUID
    balance: Decimal
    locked: bool
    ledger_sum: Decimal


class DemoBank:
    """One client per demo identity (admin, teller, alice, bob, carol), by minted tokens or real logins."""

    def __init__(self, config: Config, *, use_logins: bool) -> None:
        self.config = config
        self.clients = {
            identity.username: Client(config, self._token(identity, use_logins)) for identity in DEMO_IDENTITIES
        }
        self.owner_of: dict[UUID, str] = {}

    def check_tokens(self) -> None:
        """Fail in one clear line when the services do not accept the minted tokens (another JWT_SECRET)."""
        try:
            self.clients["admin"].get("transactions", "/transactions/monitoring/stats")
        except AuthError:
            raise AuthError(
                "the services refused the demo's admin token minted from JWT_SECRET",
                hint="set JWT_SECRET to the services' secret, or pass --login",
            ) from None

    def _token(self, identity: DemoIdentity, use_logins: bool) -> str:
        if use_logins:
            data = Client(self.config).call(
                "customer",
                "POST",
                "/auth/login",
                {"username": identity.username, "password": DEMO_PASSWORDS[identity.username]},
            )
            return data["token"]
        from cli.core.tokens import mint

        return mint(self.config, identity, DEMO_TOKEN_TTL_S)[0]

    def open_account(self, owner: str, balance: Decimal) -> UUID:
        """A fresh account for a demo customer (teller), set to `balance` by an admin adjustment."""
        customer_id = next(identity.customer_id for identity in DEMO_IDENTITIES if identity.username == owner)
        data = self.clients["teller"].call(
            "accounts", "POST", "/accounts", {"customer_id": str(customer_id), "initial_balance": Decimal(0)}
        )
        account_id = UUID(str(data["account_id"]))
        self.owner_of[account_id] = owner
        if balance:
            self.set_balance(account_id, balance)
        return account_id

    def set_balance(self, account_id: UUID, balance: Decimal) -> None:
        self.clients["admin"].call("accounts", "PATCH", f"/accounts/{account_id}/balance", {"balance": balance})

    def unsafe_withdraw(self, account_id: UUID, amount: Decimal) -> Reply:
        return self.clients["admin"].request(
            "accounts", "POST", f"/accounts/{account_id}/unsafe-withdraw", {"amount": amount}
        )

    def transfer(self, source: UUID, destination: UUID, amount: Decimal, *, as_owner: bool = False) -> Attempt:
        """A 2PC transfer by the teller, or by the source's owner; never raises for a refused transfer."""
        client = self.clients[self.owner_of[source] if as_owner else "teller"]
        try:
            outcome = send_transfer(client, source, destination, amount, str(uuid.uuid4()))
        except CliError as error:
            return Attempt(source, destination, amount, None, error.message)
        return Attempt(source, destination, amount, outcome)

    def state(self, account_id: UUID) -> AccountState:
        data = self.clients["admin"].get("accounts", f"/accounts/{account_id}")
        return AccountState(
            account_id, data["balance"], data["transaction_lock"] is not None, self.ledger_sum(account_id)
        )

    def ledger_sum(self, account_id: UUID) -> Decimal:
        """The sum of the account's committed ledger rows, every page of them."""
        total = Decimal(0)
        for page in range(MAX_LEDGER_PAGES):
            rows = self.clients["admin"].get(
                "accounts", f"/accounts/{account_id}/ledger?limit={LEDGER_PAGE}&offset={page * LEDGER_PAGE}"
            )
            total += sum((row["change"] for row in rows), Decimal(0))
            if len(rows) < LEDGER_PAGE:
                return total
        raise CliError(f"the ledger of {account_id} is longer than the demo reads")

    def settled_states(self, account_ids: list[UUID]) -> dict[UUID, AccountState]:
        """The accounts once no transfer holds them (bounded wait for recovery to finish one)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            states = {account_id: self.state(account_id) for account_id in account_ids}
            if not any(state.locked for state in states.values()) or time.monotonic() > deadline:
                return states
            time.sleep(SETTLE_POLL_S)


def fire_together(calls: list[Callable[[], Result]]) -> list[Result]:
    """Run the calls on their own threads, released at the same instant by a barrier, in order of `calls`."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Result]) -> Result:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def run_pool(
    calls: list[Callable[[], Result]], concurrency: int, on_done: Callable[[Result], Any] | None = None
) -> list[Result]:
    """Run the calls with at most `concurrency` in flight; results in order of `calls`."""
    assert concurrency > 0, "at least one worker"
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(call) for call in calls]
        for future in as_completed(futures):
            if on_done is not None:
                on_done(future.result())
        return [future.result() for future in futures]


def require_demo_endpoint(reply: Reply) -> None:
    """The racy withdrawal exists only when the accounts service runs with DEMO_ENDPOINTS=true (the demo's
    account exists, so a 404 means the route does not)."""
    if reply.status in (404, 405):
        raise CliError(
            "the accounts service does not serve the unsafe demo endpoint",
            hint="start it with DEMO_ENDPOINTS=true, as banking-cli up does",
        )


def check_services(config: Config) -> None:
    """Fail fast, in one line, when a service the demo needs is not there."""
    from cli.commands.health import check_service

    client = Client(config)
    for service in ("customer", "accounts", "transactions"):
        row = check_service(client, service)
        if row["status"] != "healthy":
            raise UnavailableError(
                f"the demo needs every service: {service} is {row['status']}"
                + (f" ({row['error']})" if row["error"] else ""),
                hint="start the system with: banking-cli up",
            )
