"""A deliberately broken accounts_service, for proving the bank checker catches real bugs.

Its commit credits every positive pending change twice, so money is created, on the single route and the
batch route alike (every commit statement of accounts_service.db). Run it exactly like the real one:
`python -m tests.faults.broken_participant` with the same environment.
"""

from __future__ import annotations

from sqlalchemy import TextClause, text

from accounts_service import db
from shared.hot_sql import HotStatement

CORRECT_CREDIT = "SET balance = balance + pending_change,"
DOUBLED_CREDIT = "SET balance = balance + pending_change * CASE WHEN pending_change > 0 THEN 2 ELSE 1 END,"

if __name__ == "__main__":
    commits = {
        name: value
        for name, value in vars(db).items()
        if isinstance(value, TextClause | HotStatement) and CORRECT_CREDIT in value.text
    }
    assert {"COMMIT_LEGS", "COMMIT_BATCH"} <= set(commits), "the commit statements changed: update the planted bug"
    for name, statement in commits.items():
        broken = statement.text.replace(CORRECT_CREDIT, DOUBLED_CREDIT)
        setattr(db, name, text(broken) if isinstance(statement, TextClause) else HotStatement(broken))
    from accounts_service.__main__ import main

    main(["serve"])
