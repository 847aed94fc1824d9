"""The coordinator log starts empty: demo data lives in the customers and accounts databases."""


async def seed(_engine) -> int:
    return 0
