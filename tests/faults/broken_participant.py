"""A deliberately broken accounts_service, for proving the bank checker catches real bugs.

Its commit credits every positive pending change twice, so money is created. Run it exactly like the
real one: `python -m tests.faults.broken_participant` with the same environment.
"""

from __future__ import annotations

from sqlalchemy import text

from accounts_service import db

CORRECT_CREDIT = "SET balance = balance + pending_change,"
DOUBLED_CREDIT = "SET balance = balance + pending_change * CASE WHEN pending_change > 0 THEN 2 ELSE 1 END,"

if __name__ == "__main__":
    assert CORRECT_CREDIT in db.COMMIT_LEGS.text, "the commit statement changed: update the planted bug"
    db.COMMIT_LEGS = text(db.COMMIT_LEGS.text.replace(CORRECT_CREDIT, DOUBLED_CREDIT))
    from accounts_service.__main__ import main

    main(["serve"])
