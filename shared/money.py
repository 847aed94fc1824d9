"""Money is a Decimal with at most four places, parsed strictly and written exactly."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from shared.errors import ValidationError

MONEY_PLACES = 4
# NUMERIC(19,4): 15 digits before the point. A value written with more of either is refused as written,
# before it is compared, rounded or sent to the database (asyncpg cannot encode `1.` and 16,400 zeros).
MONEY_INTEGER_DIGITS = 15
# NUMERIC(19,4) holds 15 integer digits; a transfer far below that keeps sums in range.
DEFAULT_MAX_AMOUNT = Decimal("1000000000")
MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)
# Plain ASCII decimal text (an exponent allowed): no underscores, other scripts' digits, NaN or Infinity.
NUMERIC_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", re.ASCII)


def parse_money(
    value: Any, *, field: str, allow_zero: bool = False, max_amount: Decimal = DEFAULT_MAX_AMOUNT
) -> Decimal:
    """A JSON number (already a Decimal or int) or a numeric string -> Decimal, or ValidationError."""
    amount = _to_decimal(value, field)
    if not amount.is_finite():
        raise ValidationError(f"{field} must be a finite number", details={"field": field})
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ValidationError(f"{field} must be {'zero or ' if allow_zero else ''}positive", details={"field": field})
    if amount > max_amount:
        raise ValidationError(f"{field} must be at most {max_amount}", details={"field": field})
    if amount != amount.quantize(MONEY_QUANTUM):
        raise ValidationError(f"{field} has more than {MONEY_PLACES} decimal places", details={"field": field})
    return amount


def _to_decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValidationError(f"{field} must be a number", details={"field": field})
    if isinstance(value, (Decimal, int)):
        return _bounded(Decimal(value), field)
    if isinstance(value, str) and len(value) <= 40 and NUMERIC_TEXT.fullmatch(value.strip()):
        return _bounded(Decimal(value.strip()), field)
    raise ValidationError(f"{field} must be a number", details={"field": field})


def _bounded(amount: Decimal, field: str) -> Decimal:
    """The amount as written: at most MONEY_PLACES decimals and MONEY_INTEGER_DIGITS integer digits."""
    if not amount.is_finite():
        return amount  # parse_money names it
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int), "a finite Decimal has an integer exponent"
    if exponent < -MONEY_PLACES:
        raise ValidationError(f"{field} has more than {MONEY_PLACES} decimal places", details={"field": field})
    if amount and amount.adjusted() >= MONEY_INTEGER_DIGITS:
        raise ValidationError(f"{field} has more than {MONEY_INTEGER_DIGITS} integer digits", details={"field": field})
    return amount


def money_text(amount: Decimal) -> str:
    """Exact decimal text with at least two places: 1000 -> '1000.00', 0.1234 -> '0.1234'."""
    assert isinstance(amount, Decimal), "money must be a Decimal"
    text = format(amount.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def parse_signed_money(value: Any, *, field: str, max_amount: Decimal = DEFAULT_MAX_AMOUNT) -> Decimal:
    """A non-zero signed amount (a participant's change), with the same rules as parse_money."""
    amount = _to_decimal(value, field)
    if amount.is_finite() and amount < 0:
        # copy_negate is exact; unary minus rounds in the context and overflows on exponents like -1e99999999.
        return parse_money(amount.copy_negate(), field=field, max_amount=max_amount).copy_negate()
    return parse_money(amount, field=field, max_amount=max_amount)
