"""A deliberately broken accounts_service, for proving the bank checker catches real bugs.

Its commit credits every positive pending change twice, so money is created. Run it exactly like the
real one: `python -m tests.faults.broken_participant` with the same environment.
"""
from __future__ import annotations

from sqlalchemy import text

from accounts_service import db

_DOUBLE_CREDIT = text("""
    UPDATE accounts SET balance = balance + pending_change * CASE WHEN pending_change > 0 THEN 2 ELSE 1 END,
                        transaction_lock = NULL, pending_change = NULL, locked_at = NULL, updated_at = now()
    WHERE account_id = :account_id AND transaction_lock = :transaction_id
    RETURNING balance""")


async def apply_commit_twice_for_credits(connection, transaction_id, account_id):
    row = (await connection.execute(_DOUBLE_CREDIT, {"transaction_id": transaction_id,
                                                     "account_id": account_id})).first()
    return row.balance if row is not None else None


if __name__ == "__main__":
    db.apply_commit = apply_commit_twice_for_credits
    from accounts_service.__main__ import main

    main(["serve"])
