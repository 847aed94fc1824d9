"""What a user types, checked before any request: ids are UUIDs, amounts exact decimals never rounded."""

from __future__ import annotations

import re
from decimal import Decimal
from uuid import UUID

from cli.core.errors import InputError
from shared.demo_ids import ALICE_MAIN
from shared.money import DEFAULT_MAX_AMOUNT, MONEY_PLACES, MONEY_QUANTUM

AMOUNT_PATTERN = re.compile(r"\d+(\.\d+)?|\.\d+")
EXAMPLE_ID = str(ALICE_MAIN)
MAX_AMOUNT_TEXT_LENGTH = 40


def parse_amount(text: str, *, name: str = "amount") -> Decimal:
    """A positive decimal with at most four places, exactly as typed; anything else is an InputError."""
    cleaned = text.strip()
    if len(cleaned) > MAX_AMOUNT_TEXT_LENGTH or not AMOUNT_PATTERN.fullmatch(cleaned):
        raise InputError(f"{name} {text!r} is not a decimal number like 100 or 12.50")
    amount = Decimal(cleaned)
    if amount != amount.quantize(MONEY_QUANTUM):
        raise InputError(
            f"{name} {cleaned} has more than {MONEY_PLACES} decimal places; "
            f"amounts are never rounded, so type at most {MONEY_PLACES}"
        )
    if amount <= 0:
        raise InputError(f"{name} must be more than zero, got {cleaned}")
    if amount > DEFAULT_MAX_AMOUNT:
        raise InputError(f"{name} must be at most {DEFAULT_MAX_AMOUNT}, got {cleaned}")
    return amount


def parse_id(text: str, *, name: str = "account id") -> UUID:
    try:
        return UUID(text.strip())
    except (ValueError, AttributeError):
        raise InputError(f"{name} {text!r} is not a UUID (like {EXAMPLE_ID})") from None
