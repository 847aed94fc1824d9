"""The coordinator log: one row per transfer and an append-only list of its protocol events.

Revision ID: 0001
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE transactions (
            transaction_id           UUID PRIMARY KEY,
            source_account_id        UUID NOT NULL,
            destination_account_id   UUID NOT NULL,
            amount                   NUMERIC(19,4) NOT NULL CHECK (amount > 0),
            status                   TEXT NOT NULL CHECK (status IN ('preparing', 'committed', 'aborted')),
            reason                   TEXT NULL,
            idempotency_key          TEXT NULL,
            request_fingerprint      TEXT NOT NULL,
            requested_by             TEXT NOT NULL,
            requested_by_customer_id UUID NULL,
            created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
            decided_at               TIMESTAMPTZ NULL,
            completed_at             TIMESTAMPTZ NULL,
            CONSTRAINT distinct_accounts CHECK (source_account_id <> destination_account_id),
            CONSTRAINT decided_when_final CHECK ((status = 'preparing') = (decided_at IS NULL)),
            CONSTRAINT completed_after_decision CHECK (completed_at IS NULL OR decided_at IS NOT NULL),
            CONSTRAINT abort_has_reason CHECK ((status = 'aborted') = (reason IS NOT NULL))
        )
    """)
    op.execute("""CREATE UNIQUE INDEX transactions_idempotency ON transactions (requested_by, idempotency_key)
                  WHERE idempotency_key IS NOT NULL""")
    op.execute("CREATE INDEX transactions_source ON transactions (source_account_id, created_at DESC)")
    op.execute("CREATE INDEX transactions_destination ON transactions (destination_account_id, created_at DESC)")
    op.execute("CREATE INDEX transactions_by_status ON transactions (status, created_at DESC)")
    op.execute("CREATE INDEX transactions_unfinished ON transactions (created_at) WHERE completed_at IS NULL")
    op.execute("""
        CREATE TABLE transaction_events (
            event_id       BIGSERIAL PRIMARY KEY,
            transaction_id UUID NOT NULL REFERENCES transactions (transaction_id),
            event_type     TEXT NOT NULL CHECK (event_type IN ('accepted', 'prepare_sent', 'vote', 'decision',
                               'decision_sent', 'acknowledged', 'ack_failed', 'completed')),
            participant    TEXT NULL,
            details        JSONB NOT NULL DEFAULT '{}'::jsonb,
            occurred_at    TIMESTAMPTZ NOT NULL,
            recorded_at    TIMESTAMPTZ NOT NULL DEFAULT now()
        )
    """)
    op.execute("CREATE INDEX transaction_events_by_transfer ON transaction_events (transaction_id, event_id)")
    # Append-only: the log is evidence, so nothing may rewrite it.
    op.execute("""
        CREATE FUNCTION transaction_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'transaction_events is append-only'; END $$
    """)
    op.execute("""CREATE TRIGGER transaction_events_no_rewrite BEFORE UPDATE OR DELETE ON transaction_events
                  FOR EACH ROW EXECUTE FUNCTION transaction_events_append_only()""")
    # A decision never changes: once committed or aborted, status stays.
    op.execute("""
        CREATE FUNCTION transactions_decision_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.status <> 'preparing' AND NEW.status <> OLD.status THEN
                RAISE EXCEPTION 'transfer % is already %', OLD.transaction_id, OLD.status;
            END IF;
            RETURN NEW;
        END $$
    """)
    op.execute("""CREATE TRIGGER transactions_final_decision BEFORE UPDATE ON transactions
                  FOR EACH ROW EXECUTE FUNCTION transactions_decision_is_final()""")


def downgrade() -> None:
    op.execute("DROP TABLE transaction_events")
    op.execute("DROP FUNCTION transaction_events_append_only")
    op.execute("DROP TABLE transactions")
    op.execute("DROP FUNCTION transactions_decision_is_final")
