"""Completion lease: when recovery may next re-send a decision, and how many times it has.

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE transactions ADD COLUMN completion_attempts INTEGER NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE transactions ADD COLUMN next_attempt_at TIMESTAMPTZ NULL")
    op.execute("""CREATE INDEX transactions_to_complete ON transactions (next_attempt_at)
                  WHERE completed_at IS NULL AND status <> 'preparing'""")
    op.execute("CREATE INDEX transactions_preparing ON transactions (created_at) WHERE status = 'preparing'")


def downgrade() -> None:
    op.execute("DROP INDEX transactions_preparing")
    op.execute("DROP INDEX transactions_to_complete")
    op.execute("ALTER TABLE transactions DROP COLUMN next_attempt_at")
    op.execute("ALTER TABLE transactions DROP COLUMN completion_attempts")
