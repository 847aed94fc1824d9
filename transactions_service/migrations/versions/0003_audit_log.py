"""The append-only audit log of staff actions on money and customers (shared/audit.py).

Revision ID: 0003
"""

from alembic import op

from shared.audit import AUDIT_LOG_DDL, AUDIT_LOG_DROP

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in AUDIT_LOG_DDL:
        op.execute(statement)


def downgrade() -> None:
    for statement in AUDIT_LOG_DROP:
        op.execute(statement)
