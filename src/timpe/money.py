"""Exact money: amounts travel as JSON numbers, live as integer cents.

Binary floats never touch a balance: request bodies are decoded with
``parse_float=Decimal`` (see ``timpe.web``), stored as integer minor units and
rendered back as decimals with at most ``SCALE`` places.
"""
from decimal import Decimal, InvalidOperation

from timpe.errors import BadRequest

SCALE = 2
UNIT = 10 ** SCALE
#: The smallest amount: one cent.
CENT = Decimal(1).scaleb(-SCALE)
#: Largest amount a transfer or an initial balance may carry (in units).
MAX_AMOUNT = Decimal("1000000000")


def parse_amount(value, field, allow_zero=False):
    """Return ``value`` as integer cents, or raise ``BadRequest``."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise BadRequest(f"'{field}' must be a number, e.g. 100 or 12.50")
    try:
        amount = Decimal(value)
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise BadRequest(f"'{field}' must be a finite number")
    if amount < 0 or (amount == 0 and not allow_zero):
        limit = ">= 0" if allow_zero else "> 0"
        raise BadRequest(f"'{field}' must be {limit}")
    if amount > MAX_AMOUNT:
        raise BadRequest(f"'{field}' must not exceed {MAX_AMOUNT}")
    # The remainder is exact; amount * UNIT would round to 28 digits first
    # and turn 0.0100...01 into a whole cent.
    if amount % CENT:
        raise BadRequest(f"'{field}' may have at most {SCALE} decimal places")
    return int(amount * UNIT)


def to_api(cents):
    """Integer cents -> an exact JSON number (an int when whole)."""
    if cents % UNIT == 0:
        return cents // UNIT
    return Decimal(cents).scaleb(-SCALE)
