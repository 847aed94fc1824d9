"""accounts_service: balances, and the two-phase-commit participant."""
