"""Accounts and the participant log (whose committed rows are each account's ledger).

Revision ID: 0001
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE accounts (
            account_id       UUID PRIMARY KEY,
            customer_id      UUID NOT NULL,
            balance          NUMERIC(19,4) NOT NULL CHECK (balance >= 0),
            transaction_lock UUID NULL,
            pending_change   NUMERIC(19,4) NULL,
            locked_at        TIMESTAMPTZ NULL,
            created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
            CONSTRAINT lock_and_pending_change_together CHECK (
                (transaction_lock IS NULL) = (pending_change IS NULL)
                AND (transaction_lock IS NULL) = (locked_at IS NULL)),
            CONSTRAINT prepared_balance_not_negative CHECK (balance + COALESCE(pending_change, 0) >= 0)
        )
    """)
    op.execute("CREATE INDEX accounts_customer_id ON accounts (customer_id)")
    op.execute("CREATE INDEX accounts_locked ON accounts (locked_at) WHERE transaction_lock IS NOT NULL")
    op.execute("""
        CREATE TABLE participant_log (
            transaction_id UUID NOT NULL,
            account_id     UUID NOT NULL,
            state          TEXT NOT NULL CHECK (state IN ('prepared', 'committed', 'aborted')),
            change         NUMERIC(19,4) NOT NULL,
            kind           TEXT NOT NULL DEFAULT 'transfer'
                           CHECK (kind IN ('transfer', 'opening', 'adjustment', 'unsafe_withdrawal')),
            reason         TEXT NULL,
            created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (transaction_id, account_id)
        )
    """)
    op.execute("CREATE INDEX participant_log_ledger ON participant_log (account_id, created_at)")
    op.execute("CREATE INDEX participant_log_tombstones ON participant_log (updated_at) WHERE state = 'aborted'")


def downgrade() -> None:
    op.execute("DROP TABLE participant_log")
    op.execute("DROP TABLE accounts")
