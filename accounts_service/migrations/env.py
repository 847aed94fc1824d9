"""Alembic entry point for this service's own database."""

from shared.alembic_env import run_migrations

run_migrations()
