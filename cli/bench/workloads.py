"""The benchmark's workloads: which accounts exist, who owns them, and which transfer each client sends next."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from decimal import Decimal

# Each bench customer owns this many of the workload's accounts (the last one may own fewer), so the
# coordinator's ownership check asks about many owners, as it would in a bank.
ACCOUNTS_PER_CUSTOMER = 5


@dataclass(frozen=True)
class Workload:
    name: str
    accounts: int
    opening_balance: Decimal
    overdraft_share: float  # fraction of transfers sized to fail for insufficient funds

    def next_transfer(self, randomness: random.Random) -> tuple[int, int, Decimal]:
        """(source index, destination index, amount): distinct accounts, exact amounts."""
        source, destination = randomness.sample(range(self.accounts), 2)
        if randomness.random() < self.overdraft_share:
            return source, destination, self.opening_balance * 1000
        return source, destination, Decimal(randomness.randint(1, 100)) / 100

    @property
    def total_money(self) -> Decimal:
        return self.opening_balance * self.accounts

    @property
    def customers(self) -> int:
        return -(-self.accounts // ACCOUNTS_PER_CUSTOMER)

    def owner_of(self, account_index: int) -> int:
        """The index of the customer owning this account."""
        assert 0 <= account_index < self.accounts
        return account_index // ACCOUNTS_PER_CUSTOMER

    def with_accounts(self, accounts: int) -> Workload:
        return replace(self, accounts=accounts) if accounts else self


WORKLOADS = {
    # Random distinct pairs over many accounts: contention is rare, almost every transfer commits.
    "uniform": Workload("uniform", accounts=10_000, opening_balance=Decimal("1000"), overdraft_share=0.0),
    # Every transfer among five accounts: the row lock is the bottleneck.
    "hot": Workload("hot", accounts=5, opening_balance=Decimal("1000000"), overdraft_share=0.0),
    # A share of transfers must fail for insufficient funds.
    "overdraft": Workload("overdraft", accounts=1_000, opening_balance=Decimal("100"), overdraft_share=0.2),
}
