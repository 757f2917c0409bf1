from __future__ import annotations

from decimal import Decimal as D

from pets.risk import limits
from pets.risk.denial import Denial


def test_fit_reduces_onto_the_size_grid() -> None:
    assert limits.fit(D(100), D("0.3"), D(1000), D(5), True) == D(100)
    assert limits.fit(D(100), D("0.3"), D(10), D(5), True) == D("33.33")  # 10 / 0.3 rounded down
    assert limits.fit(D(100), D("0.3"), D(10), D(5), False) is None  # a basket leg is not reduced
    assert limits.fit(D(100), D("0.3"), D("1.4"), D(5), True) is None  # 4.66 shares < minimum 5
    assert limits.fit(D(100), D("0.3"), D(0), D(5), True) is None


def test_allocation_and_bot_cap() -> None:
    ok = limits.check_allocation("bot_01", D(100), D("0.5"), D(1100), D(1200), D(5), True)
    assert ok == D(100)  # 1100 + 50 fits 1200
    cut = limits.check_allocation("bot_01", D(400), D("0.5"), D(1100), D(1200), D(5), True)
    assert cut == D(200)
    denied = limits.check_allocation("bot_01", D(400), D("0.5"), D(1200), D(1200), D(5), True)
    assert isinstance(denied, Denial) and denied.rule == "allocation"
    assert denied.reason == "bot_01: exposure 1200.00 + order 200.00 exceeds its allocation 1200.00"
    capped = limits.check_bot_exposure("bot_01", D(1000), D("0.5"), D(1900), D(2000), D(5), True)
    assert capped == D(200)
    over = limits.check_bot_exposure("bot_01", D(1000), D("0.5"), D(2000), D(2000), D(5), True)
    assert isinstance(over, Denial) and over.rule == "bot_exposure"


def test_category_cap() -> None:
    denied = limits.check_category_exposure("sports", D(10), D("0.5"), D(6000), D(6000), D(5), True)
    assert (
        isinstance(denied, Denial)
        and denied.rule == "category_exposure"
        and "category sports" in denied.reason
    )
    assert limits.check_category_exposure("sports", D(10), D("0.5"), D(5990), D(6000), D(5), True) == D(10)


def test_position_size_min_and_max() -> None:
    small = limits.check_position_size("m1", D(5), D("0.5"), D(0), D(10), D(500), D(5), True, opening=True)
    assert (
        isinstance(small, Denial) and small.rule == "position_size" and "below the minimum 10" in small.reason
    )
    # adding to an existing position is not held to the minimum
    assert (
        limits.check_position_size("m1", D(5), D("0.5"), D(20), D(10), D(500), D(5), True, opening=False) == 5
    )
    cut = limits.check_position_size(
        "m1", D(1000), D("0.5"), D(400), D(10), D(500), D(5), True, opening=False
    )
    assert cut == D(200)


def test_leverage_uses_cash_minus_reservations_with_fees() -> None:
    # 100 shares at 0.5 plus a fee of 0.0075 per share = 50.75 > 50 available
    denied = limits.check_leverage(D(100), D("0.5075"), D(50), D(0), D(10_000), D(5), False)
    assert (
        isinstance(denied, Denial) and denied.rule == "leverage" and "available cash 50.00" in denied.reason
    )
    assert limits.check_leverage(D(100), D("0.5075"), D(50), D(0), D(10_000), D(5), True) == D("98.52")
    gross = limits.check_leverage(D(100), D("0.5"), D(5000), D(9990), D(10_000), D(5), False)
    assert isinstance(gross, Denial) and "gross exposure" in gross.reason


def test_inventory_covers_sells() -> None:
    assert limits.check_inventory("yes1", D(10), D(10)) is None
    denied = limits.check_inventory("yes1", D("10.01"), D(10))
    assert denied is not None and denied.rule == "inventory"
