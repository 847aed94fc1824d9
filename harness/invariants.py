"""The auditor: PROTOCOL.md's invariants, read straight from the accounts and transactions databases, not the API.

Used by the test suite after concurrent runs and by the bank checker after faults. Each check
returns human-readable violations; an empty list means the invariant holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

import asyncpg

_BALANCES = """
    SELECT account_id, balance, pending_change, transaction_lock FROM accounts WHERE account_id = ANY($1::uuid[])"""
_LEDGER_SUMS = """
    SELECT account_id, COALESCE(sum(change), 0) AS total FROM participant_log
    WHERE state = 'committed' AND account_id = ANY($1::uuid[]) GROUP BY account_id"""
_COMMITTED_LEGS = """
    SELECT transaction_id, account_id, change FROM participant_log
    WHERE state = 'committed' AND kind = 'transfer' AND account_id = ANY($1::uuid[])"""
_TRANSFERS = """
    SELECT transaction_id, source_account_id, destination_account_id, amount, status, completed_at
    FROM transactions WHERE source_account_id = ANY($1::uuid[]) OR destination_account_id = ANY($1::uuid[])"""


@dataclass
class InvariantReport:
    violations: list[str] = field(default_factory=list)
    accounts_checked: int = 0
    transfers_checked: int = 0
    locked_accounts: int = 0
    unfinished_transfers: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations


async def check_invariants(
    accounts_url: str,
    transactions_url: str,
    account_ids: Iterable[UUID],
    *,
    expected_total: Decimal,
    quiesced: bool = True,
    client_outcomes: dict[UUID, str] | None = None,
) -> InvariantReport:
    """All six invariants over these accounts; `quiesced` adds no-locks and nothing-unfinished (5)."""
    ids = list(account_ids)
    accounts = await _fetch(accounts_url, _BALANCES, ids)
    ledger_sums = {row["account_id"]: row["total"] for row in await _fetch(accounts_url, _LEDGER_SUMS, ids)}
    legs = await _fetch(accounts_url, _COMMITTED_LEGS, ids)
    transfers = await _fetch(transactions_url, _TRANSFERS, ids)
    report = InvariantReport(accounts_checked=len(accounts), transfers_checked=len(transfers))
    report.violations += _money_conserved(accounts, expected_total, len(ids))
    report.violations += _no_negative_balance(accounts)
    report.violations += _balances_match_ledger(accounts, ledger_sums)
    report.violations += _all_or_nothing(transfers, legs, set(ids))
    report.locked_accounts = sum(1 for row in accounts if row["transaction_lock"] is not None)
    report.unfinished_transfers = sum(1 for row in transfers if row["completed_at"] is None)
    if quiesced:
        report.violations += _quiescent(accounts, transfers)
    report.violations += _clients_told_the_truth(transfers, client_outcomes or {})
    return report


async def _fetch(url: str, query: str, ids: list[UUID]) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(query, ids)
    finally:
        await connection.close()


def _money_conserved(accounts, expected_total: Decimal, expected_accounts: int) -> list[str]:
    total = sum((row["balance"] for row in accounts), Decimal(0))
    problems = [] if total == expected_total else [f"1: total money is {total}, expected {expected_total}"]
    if len(accounts) != expected_accounts:
        problems.append(f"1: found {len(accounts)} of {expected_accounts} accounts")
    return problems


def _no_negative_balance(accounts) -> list[str]:
    problems = []
    for row in accounts:
        pending = row["pending_change"] or Decimal(0)
        if row["balance"] < 0 or row["balance"] + pending < 0:
            problems.append(f"2: account {row['account_id']} balance {row['balance']} pending {pending}")
    return problems


def _balances_match_ledger(accounts, ledger_sums: dict[UUID, Decimal]) -> list[str]:
    return [
        f"4: account {row['account_id']} balance {row['balance']} != ledger sum "
        f"{ledger_sums.get(row['account_id'], Decimal(0))}"
        for row in accounts
        if row["balance"] != ledger_sums.get(row["account_id"], Decimal(0))
    ]


def _all_or_nothing(transfers, legs, watched: set[UUID]) -> list[str]:
    """3 and 4: a committed transfer is applied exactly once on each of its accounts, an aborted one nowhere."""
    applied: dict[UUID, list[tuple[UUID, Decimal]]] = {}
    for leg in legs:
        applied.setdefault(leg["transaction_id"], []).append((leg["account_id"], leg["change"]))
    problems = []
    for transfer in transfers:
        expected = {
            (transfer["source_account_id"], -transfer["amount"]),
            (transfer["destination_account_id"], transfer["amount"]),
        }
        expected = {leg for leg in expected if leg[0] in watched}
        found = applied.pop(transfer["transaction_id"], [])
        if transfer["status"] == "committed" and (len(found) != len(expected) or set(found) != expected):
            problems.append(f"3: committed transfer {transfer['transaction_id']} applied as {found}")
        if transfer["status"] != "committed" and found:
            problems.append(f"3: {transfer['status']} transfer {transfer['transaction_id']} applied as {found}")
    problems += [
        f"4: ledger rows {found} of unknown transfer {transaction_id}" for transaction_id, found in applied.items()
    ]
    return problems


def _quiescent(accounts, transfers) -> list[str]:
    problems = [
        f"5: account {row['account_id']} still locked by {row['transaction_lock']}"
        for row in accounts
        if row["transaction_lock"] is not None
    ]
    problems += [
        f"5: transfer {row['transaction_id']} left {row['status']}, completed_at {row['completed_at']}"
        for row in transfers
        if row["status"] == "preparing" or row["completed_at"] is None
    ]
    return problems


def _clients_told_the_truth(transfers, client_outcomes: dict[UUID, str]) -> list[str]:
    stored = {row["transaction_id"]: row["status"] for row in transfers}
    return [
        f"6: client was told {told} for {transaction_id}, log says {stored.get(transaction_id)}"
        for transaction_id, told in client_outcomes.items()
        if stored.get(transaction_id) != told
    ]
