"""Customers and their logins (users), with email and username unique regardless of case.

Revision ID: 0001
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE customers (
            customer_id  UUID PRIMARY KEY,
            name         TEXT NOT NULL,
            address      TEXT NOT NULL,
            contact_info JSONB NOT NULL,
            created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
            CONSTRAINT contact_info_has_email CHECK (
                jsonb_typeof(contact_info) = 'object' AND jsonb_typeof(contact_info -> 'email') = 'string')
        )
    """)
    op.execute("CREATE UNIQUE INDEX customers_email_unique ON customers (lower(contact_info ->> 'email'))")
    op.execute("CREATE INDEX customers_created_at ON customers (created_at, customer_id)")
    op.execute("""
        CREATE TABLE users (
            user_id       UUID PRIMARY KEY,
            username      TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            role          TEXT NOT NULL CHECK (role IN ('customer', 'teller', 'admin')),
            customer_id   UUID NULL REFERENCES customers (customer_id) ON DELETE CASCADE,
            created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
            CONSTRAINT customer_login_has_customer CHECK ((role = 'customer') = (customer_id IS NOT NULL))
        )
    """)
    op.execute("CREATE UNIQUE INDEX users_username_unique ON users (lower(username))")
    # ON DELETE CASCADE looks users up by customer_id; without an index every delete scans users.
    op.execute("CREATE INDEX users_customer_id ON users (customer_id) WHERE customer_id IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP TABLE users")
    op.execute("DROP TABLE customers")
