"""participant_assert(): lets one statement check an invariant and abort itself (all of it) when it fails.

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Our own SQLSTATEs (named in accounts_service/db.py): PB001 a prepare lost a race with an abort
# (expected, rare), PB500 a broken invariant.


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION participant_assert(condition boolean, sqlstate text, message text) RETURNS boolean
        LANGUAGE plpgsql AS $$
        BEGIN
            IF condition IS NOT TRUE THEN
                RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message;
            END IF;
            RETURN true;
        END $$
    """)


def downgrade() -> None:
    op.execute("DROP FUNCTION participant_assert")
