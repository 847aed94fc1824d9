"""Login attempts counted in the database, so every replica sees the same counts (customer_service/throttle.py).

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per username or client address: attempts in the window that started at window_started_at.
    op.execute("""
        CREATE TABLE login_attempts (
            throttle_key      TEXT PRIMARY KEY,
            attempts          INTEGER NOT NULL CHECK (attempts >= 0),
            window_started_at TIMESTAMPTZ NOT NULL
        )
    """)
    op.execute("CREATE INDEX login_attempts_window ON login_attempts (window_started_at)")


def downgrade() -> None:
    op.execute("DROP TABLE login_attempts")
