"""transactions_service: the two-phase-commit coordinator for transfers."""
