"""The checker names each unhandled error a service logged by its exception line, read from error.log."""

from __future__ import annotations

from pathlib import Path

from harness.bank_check import _unhandled_errors
from shared import jsonio

# A SQLAlchemy error as format_exc_info renders it: its message spans lines, some of them indented SQL.
TRACEBACK = """Traceback (most recent call last):
  File "/app/accounts_service/participant.py", line 236, in _prepare_once
    rows = await db.prepare_legs(connection, transaction_id, ordered)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
sqlalchemy.exc.IntegrityError: (UniqueViolationError) duplicate key value violates unique constraint "x"
[SQL:
    WITH wanted AS (
        SELECT 1)
    SELECT 1]
(Background on this error at: https://sqlalche.me/e/21/gkpj)"""


def test_each_logged_unhandled_error_is_named_by_its_exception_line_and_broken_lines_are_skipped(
    tmp_path: Path,
) -> None:
    lines = [
        {
            "event": "unhandled_error",
            "service_name": "accounts-service",
            "method": "POST",
            "path": "/2pc/prepare",
            "exception": TRACEBACK,
        },
        {"event": "database_unavailable", "service_name": "accounts-service"},
    ]
    error_log = tmp_path / "error.log"
    error_log.write_text(
        "\n".join(jsonio.dumps(line) for line in lines) + '\nnot json\n{"event": "unhandled_err\n[1]\n',
        encoding="utf-8",
    )

    assert _unhandled_errors(error_log) == [
        "accounts-service POST /2pc/prepare: sqlalchemy.exc.IntegrityError: (UniqueViolationError) "
        'duplicate key value violates unique constraint "x"'
    ]


def test_no_error_log_means_no_unhandled_error(tmp_path: Path) -> None:
    assert _unhandled_errors(tmp_path / "error.log") == []
