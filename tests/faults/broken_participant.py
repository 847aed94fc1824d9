"""A deliberately broken accounts_service, for proving the bank checker catches real bugs.

Its commit credits every positive pending change twice, so money is created, on the single route and the
batch route alike (every commit statement of accounts_service.db). Run it exactly like the real one:
`python -m tests.faults.broken_participant` with the same environment.
"""

from __future__ import annotations

from sqlalchemy import TextClause, text

from accounts_service import db

CORRECT_CREDIT = "SET balance = balance + pending_change,"
DOUBLED_CREDIT = "SET balance = balance + pending_change * CASE WHEN pending_change > 0 THEN 2 ELSE 1 END,"

if __name__ == "__main__":
    commits = [
        name for name, value in vars(db).items() if isinstance(value, TextClause) and CORRECT_CREDIT in value.text
    ]
    assert "COMMIT_LEGS" in commits, "the commit statement changed: update the planted bug"
    for name in commits:
        setattr(db, name, text(getattr(db, name).text.replace(CORRECT_CREDIT, DOUBLED_CREDIT)))
    from accounts_service.__main__ import main

    main(["serve"])
