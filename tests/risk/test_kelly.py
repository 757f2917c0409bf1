from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pets.risk.denial import Denial
from pets.risk.kelly import kelly_fraction, kelly_optimal, kelly_size


def test_kelly_optimal_for_a_binary_token() -> None:
    # p = 0.6 at price 0.5: win 0.5 per 0.5 staked (b = 1): f* = p - q/b = 0.6 - 0.4 = 0.2
    assert kelly_optimal(D("0.6"), D("0.5")) == D("0.2")
    # p = 0.3 at price 0.2: b = 4, f* = 0.3 - 0.7/4 = 0.125
    assert kelly_optimal(D("0.3"), D("0.2")) == D("0.125")
    assert kelly_optimal(D("0.4"), D("0.5")) < 0


def test_fraction_halves_per_loss_with_a_quarter_floor() -> None:
    assert kelly_fraction(D("0.5"), D("0.25"), 0) == D("0.5")
    assert kelly_fraction(D("0.5"), D("0.25"), 1) == D("0.25")
    assert kelly_fraction(D("0.5"), D("0.25"), 2) == D("0.25")
    assert kelly_fraction(D("0.25"), D("0.25"), 0) == D("0.25")


def test_kelly_caps_size() -> None:
    # half Kelly of f* = 0.2 on a 1,000 bankroll is 100 USDC at 0.5 = 200 shares
    assert kelly_size(D(500), D("0.5"), D("0.6"), D(1000), D("0.5")) == D(200)
    assert kelly_size(D(50), D("0.5"), D("0.6"), D(1000), D("0.5")) == D(50)


@pytest.mark.parametrize(("p", "price"), [("0.5", "0.5"), ("0.4", "0.5"), ("0", "0.01")])
def test_no_edge_is_denied(p: str, price: str) -> None:
    result = kelly_size(D(10), D(price), D(p), D(1000), D("0.5"))
    assert isinstance(result, Denial) and result.rule == "kelly" and "no edge" in result.reason


def test_a_stake_too_small_for_one_share_is_denied() -> None:
    result = kelly_size(D(10), D("0.5"), D("0.5001"), D(1), D("0.25"))
    assert isinstance(result, Denial) and "buys no share" in result.reason


@given(
    size=st.decimals(min_value=D("0.01"), max_value=D(10_000), places=2),
    price=st.decimals(min_value=D("0.01"), max_value=D("0.99"), places=2),
    p=st.decimals(min_value=D(0), max_value=D(1), places=3),
)
def test_kelly_never_increases_size(size: D, price: D, p: D) -> None:
    result = kelly_size(size, price, p, D(2000), D("0.5"))
    if not isinstance(result, Denial):
        assert D(0) < result <= size
        assert result == result.quantize(D("0.01"))
