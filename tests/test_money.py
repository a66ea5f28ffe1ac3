from decimal import Decimal

import pytest

from timpe.errors import BadRequest
from timpe.money import parse_amount, to_api


@pytest.mark.parametrize("value, cents", [
    (1, 100), (Decimal("0.01"), 1), (Decimal("12.50"), 1250),
    (Decimal("1.000"), 100), (Decimal("1000000000"), 100000000000),
])
def test_parse_exact(value, cents):
    assert parse_amount(value, "amount") == cents


@pytest.mark.parametrize("value", [
    0, -1, Decimal("-0.01"), Decimal("0.001"), Decimal("1000000000.01"),
    True, False, "10", None, [], {}, 1.5, Decimal("NaN"), Decimal("Infinity"),
    # More digits than Decimal's 28-digit context: cents * 100 would round
    # them away and accept a sub-cent amount as a whole cent.
    Decimal("0.01000000000000000000000000000001"),
    Decimal("999999999.999999999999999999999"),
    Decimal("1E+999999"), Decimal("1E-999999"),
])
def test_parse_rejects(value):
    with pytest.raises(BadRequest):
        parse_amount(value, "amount")


def test_zero_allowed_for_initial_balance():
    assert parse_amount(0, "balance", allow_zero=True) == 0


def test_render_is_exact():
    assert to_api(990000) == 9900 and isinstance(to_api(990000), int)
    assert str(to_api(1050)) == "10.50"
    assert str(to_api(1)) == "0.01"
