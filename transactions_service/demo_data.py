"""The coordinator log starts empty: demo data lives in the customers and accounts databases."""

from __future__ import annotations

from shared.seeding import SeedReport


async def seed(_engine: object, _settings: object = None) -> SeedReport:
    return SeedReport()
