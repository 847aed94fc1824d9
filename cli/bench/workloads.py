"""The benchmark's workloads: which accounts exist, and which transfer each client sends next."""
from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal


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


WORKLOADS = {
    # Random distinct pairs over many accounts: contention is rare, almost every transfer commits.
    "uniform": Workload("uniform", accounts=10_000, opening_balance=Decimal("1000"), overdraft_share=0.0),
    # Every transfer among five accounts: the row lock is the bottleneck.
    "hot": Workload("hot", accounts=5, opening_balance=Decimal("1000000"), overdraft_share=0.0),
    # A share of transfers must fail for insufficient funds.
    "overdraft": Workload("overdraft", accounts=1_000, opening_balance=Decimal("100"), overdraft_share=0.2),
}
