"""Every statement that logs protocol events also NOTIFYs them, so each coordinator replica can push them.

One notification per transfer per statement (a statement-level trigger over the new rows), carrying the
transfer's accounts, amount (as text: exact) and stored status, so a listener can route it without a query.
NOTIFY is delivered only when the transaction commits, in commit order: a listener never hears of an
event the log does not hold. A payload must stay under PostgreSQL's 8000 bytes; an oversized one drops
its events' details and says so (`truncated`).

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CHANNEL = "transaction_events"
MAX_PAYLOAD_BYTES = 7900  # PostgreSQL refuses 8000 and more; leave room for the channel's bookkeeping


def upgrade() -> None:
    op.execute(f"""
        CREATE FUNCTION transaction_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            batch RECORD;
            payload TEXT;
        BEGIN
            FOR batch IN
                SELECT t.transaction_id, t.source_account_id, t.destination_account_id, t.amount, t.status,
                       t.reason,
                       jsonb_agg(jsonb_build_object('event_id', e.event_id, 'event_type', e.event_type,
                                                    'participant', e.participant, 'details', e.details,
                                                    'occurred_at', e.occurred_at) ORDER BY e.event_id) AS events,
                       jsonb_agg(jsonb_build_object('event_id', e.event_id, 'event_type', e.event_type,
                                                    'participant', e.participant, 'details', '{{}}'::jsonb,
                                                    'occurred_at', e.occurred_at) ORDER BY e.event_id) AS bare
                FROM new_events e JOIN transactions t USING (transaction_id)
                GROUP BY t.transaction_id, t.source_account_id, t.destination_account_id, t.amount, t.status, t.reason
            LOOP
                payload := jsonb_build_object(
                    'transaction_id', batch.transaction_id, 'source_account_id', batch.source_account_id,
                    'destination_account_id', batch.destination_account_id, 'amount', batch.amount::text,
                    'status', batch.status, 'reason', batch.reason, 'events', batch.events)::text;
                IF octet_length(payload) > {MAX_PAYLOAD_BYTES} THEN
                    payload := jsonb_build_object(
                        'transaction_id', batch.transaction_id, 'source_account_id', batch.source_account_id,
                        'destination_account_id', batch.destination_account_id, 'amount', batch.amount::text,
                        'status', batch.status, 'reason', batch.reason, 'events', batch.bare,
                        'truncated', true)::text;
                END IF;
                IF octet_length(payload) > {MAX_PAYLOAD_BYTES} THEN  -- never let a notice fail the log write
                    payload := jsonb_build_object('transaction_id', batch.transaction_id, 'status', batch.status,
                                                  'events', '[]'::jsonb, 'truncated', true)::text;
                END IF;
                PERFORM pg_notify('{CHANNEL}', payload);
            END LOOP;
            RETURN NULL;
        END $$
    """)
    op.execute("""CREATE TRIGGER transaction_events_notify AFTER INSERT ON transaction_events
                  REFERENCING NEW TABLE AS new_events
                  FOR EACH STATEMENT EXECUTE FUNCTION transaction_events_notify()""")


def downgrade() -> None:
    op.execute("DROP TRIGGER transaction_events_notify ON transaction_events")
    op.execute("DROP FUNCTION transaction_events_notify")
