"""Login sessions with rotating refresh tokens (stored hashed), and the feed of revocations every service reads.

Revision ID: 0005
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per refresh token; a family is one login and its rotations (the access tokens' `sid`).
    op.execute("""
        CREATE TABLE refresh_tokens (
            token_id     UUID PRIMARY KEY,
            family_id    UUID NOT NULL,
            username     TEXT NOT NULL,
            token_hash   TEXT NOT NULL UNIQUE,
            created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
            expires_at   TIMESTAMPTZ NOT NULL,
            spent_at     TIMESTAMPTZ NULL,
            revoked_at   TIMESTAMPTZ NULL
        )
    """)
    op.execute("CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id)")
    op.execute("CREATE INDEX refresh_tokens_username ON refresh_tokens (username)")
    op.execute("""
        CREATE TABLE revocations (
            revocation_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            session_id    UUID NULL,
            subject       TEXT NULL,
            revoked_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
            CONSTRAINT revokes_something CHECK (session_id IS NOT NULL OR subject IS NOT NULL)
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE revocations")
    op.execute("DROP TABLE refresh_tokens")
