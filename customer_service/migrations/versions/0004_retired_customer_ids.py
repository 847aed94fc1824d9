"""A deleted customer's id is retired, never reused: re-creating it would hand its old accounts to someone.

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE retired_customer_ids (
            customer_id UUID PRIMARY KEY,
            retired_at  TIMESTAMPTZ NOT NULL DEFAULT now()
        )
    """)
    op.execute("""
        CREATE FUNCTION retire_customer_id() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO retired_customer_ids (customer_id) VALUES (OLD.customer_id) ON CONFLICT DO NOTHING;
            RETURN OLD;
        END $$
    """)
    op.execute("""CREATE TRIGGER customers_retire_id AFTER DELETE ON customers
                  FOR EACH ROW EXECUTE FUNCTION retire_customer_id()""")
    op.execute("""
        CREATE FUNCTION refuse_retired_customer_id() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM retired_customer_ids WHERE customer_id = NEW.customer_id) THEN
                RAISE EXCEPTION 'this customer id is retired'
                    USING ERRCODE = 'unique_violation', CONSTRAINT = 'customers_id_retired';
            END IF;
            RETURN NEW;
        END $$
    """)
    op.execute("""CREATE TRIGGER customers_refuse_retired_id BEFORE INSERT ON customers
                  FOR EACH ROW EXECUTE FUNCTION refuse_retired_customer_id()""")


def downgrade() -> None:
    op.execute("DROP TRIGGER customers_refuse_retired_id ON customers")
    op.execute("DROP TRIGGER customers_retire_id ON customers")
    op.execute("DROP FUNCTION refuse_retired_customer_id()")
    op.execute("DROP FUNCTION retire_customer_id()")
    op.execute("DROP TABLE retired_customer_ids")
