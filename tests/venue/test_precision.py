"""Property tests of the central rounding function on every tick size the venue uses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder

from pets.venue import precision as vp

TICKS = [
    Decimal("0.1"),
    Decimal("0.01"),
    Decimal("0.005"),
    Decimal("0.0025"),
    Decimal("0.001"),
    Decimal("0.0001"),
]

prices = st.decimals(min_value=Decimal("-0.5"), max_value=Decimal("1.5"), places=6, allow_nan=False)
sizes = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2, allow_nan=False)


def test_table_matches_the_venue_client() -> None:
    """Our precision table is the V2 client's ROUNDING_CONFIG, tick by tick."""
    assert set(vp.TICK_SIZES) == set(TICKS)
    for tick in TICKS:
        ref = ROUNDING_CONFIG[str(tick)]
        p = vp.precision(tick)
        assert (p.price_decimals, p.size_decimals, p.amount_decimals) == (ref.price, ref.size, ref.amount)


def test_unknown_tick_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"unknown tick size 0\.02"):
        vp.precision(Decimal("0.02"))


@pytest.mark.parametrize("tick", TICKS)
@given(price=prices)
@settings(max_examples=150, deadline=None)
def test_rounded_price_is_on_grid_and_in_range(tick: Decimal, price: Decimal) -> None:
    for mode in ("down", "up", "nearest"):
        rounded = vp.round_price(price, tick, mode)  # type: ignore[arg-type]
        assert vp.on_tick_grid(rounded, tick)
        assert tick <= rounded <= 1 - tick
        assert -rounded.as_tuple().exponent <= vp.precision(tick).price_decimals  # type: ignore[operator]
        if tick <= price <= 1 - tick:
            assert abs(rounded - price) < tick
            if mode == "down":
                assert rounded <= price
            if mode == "up":
                assert rounded >= price


@pytest.mark.parametrize("tick", TICKS)
@given(price=prices)
@settings(max_examples=100, deadline=None)
def test_passive_price_never_worse_for_the_trader(tick: Decimal, price: Decimal) -> None:
    """Over the whole range, off the tradable one included: a price or no order, never a worse price."""
    buy, sell = vp.passive_price("BUY", price, tick), vp.passive_price("SELL", price, tick)
    assert (buy is None) == (price < tick)
    assert (sell is None) == (price > 1 - tick)
    for rounded in (r for r in (buy, sell) if r is not None):
        assert vp.on_tick_grid(rounded, tick) and tick <= rounded <= 1 - tick
    if buy is not None:
        assert buy <= price and (price > 1 - tick or price - buy < tick)
    if sell is not None:
        assert sell >= price and (price < tick or sell - price < tick)


@pytest.mark.parametrize(
    ("side", "price", "tick"),
    [("BUY", "0.004", "0.01"), ("BUY", "0", "0.001"), ("SELL", "0.996", "0.01"), ("SELL", "0.9999", "0.001")],
)
def test_no_safe_price_is_no_order(side: str, price: str, tick: str) -> None:
    # a BUY at 0.004 on the 0.01 grid would be 0.01: more than asked
    assert vp.passive_price(side, Decimal(price), Decimal(tick)) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("tick", TICKS)
def test_grid_prices_are_fixed_points(tick: Decimal) -> None:
    n = int(1 / tick)
    for k in range(1, n, max(1, n // 97)):
        price = k * tick
        assert vp.round_price(price, tick, "down") == price
        assert vp.round_price(price, tick, "up") == price


@given(size=st.decimals(min_value=Decimal("-5"), max_value=Decimal("1e6"), places=6, allow_nan=False))
def test_round_size_floors_to_two_decimals(size: Decimal) -> None:
    rounded = vp.round_size(size)
    assert rounded >= 0
    assert rounded <= max(size, Decimal(0))
    assert max(size, Decimal(0)) - rounded < Decimal("0.01")
    assert rounded == rounded.quantize(Decimal("0.01"))


@pytest.mark.parametrize("tick", TICKS)
@given(price=prices, size=sizes, side=st.sampled_from(["BUY", "SELL"]))
@settings(max_examples=200, deadline=None)
def test_limit_amounts_are_exact(tick: Decimal, price: Decimal, size: Decimal, side: str) -> None:
    grid_price = vp.round_price(price, tick, "nearest")
    maker, taker = vp.limit_order_amounts(side, grid_price, size, tick)  # type: ignore[arg-type]
    usdc, shares = (maker, taker) if side == "BUY" else (taker, maker)
    assert Decimal(usdc) == grid_price * size * 1_000_000
    assert Decimal(shares) == size * 1_000_000
    # the pUSD leg fits the tick's amount decimals (the venue rejects more)
    assert usdc % (10 ** (6 - vp.precision(tick).amount_decimals)) == 0


def test_venue_client_float_rounding_loses_a_cent_where_ours_does_not() -> None:
    """Why amounts must not go through the client's float helpers: 1.13 shares become 1.12 there."""
    builder = OrderBuilder(signer=None)  # type: ignore[arg-type]
    _, ref_maker, ref_taker = builder.get_order_amounts("BUY", 1.13, 0.1, ROUNDING_CONFIG["0.1"])
    assert ref_taker == 1_120_000  # the client's floor(1.13 * 100) is 112
    assert vp.limit_order_amounts("BUY", Decimal("0.1"), Decimal("1.13"), Decimal("0.1")) == (
        113_000,
        1_130_000,
    )
    # on a value without float trouble both agree
    _, ref_maker, ref_taker = builder.get_order_amounts("SELL", 12.5, 0.43, ROUNDING_CONFIG["0.01"])
    assert vp.limit_order_amounts("SELL", Decimal("0.43"), Decimal("12.5"), Decimal("0.01")) == (
        ref_maker,
        ref_taker,
    )


@pytest.mark.parametrize("tick", TICKS)
def test_limit_amounts_refuse_off_grid_input(tick: Decimal) -> None:
    off = tick + tick / 2
    with pytest.raises(ValueError, match="tick grid"):
        vp.limit_order_amounts("BUY", off, Decimal("10"), tick)
    with pytest.raises(ValueError, match=r"multiple of 0\.01"):
        vp.limit_order_amounts("BUY", tick, Decimal("10.001"), tick)


@pytest.mark.parametrize("tick", TICKS)
@given(
    price=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.9999"), places=4),
    amount=st.decimals(min_value=Decimal("1"), max_value=Decimal("50000"), places=4),
    side=st.sampled_from(["BUY", "SELL"]),
)
@settings(max_examples=150, deadline=None)
def test_market_amounts_respect_amount_decimals(
    tick: Decimal, price: Decimal, amount: Decimal, side: str
) -> None:
    maker, taker = vp.market_order_amounts(side, amount, price, tick)  # type: ignore[arg-type]
    p = vp.precision(tick)
    assert maker % 10_000 == 0  # the given amount keeps 2 decimals
    assert taker % (10 ** (6 - p.amount_decimals)) == 0  # the derived leg fits the amount decimals
    worst = vp.round_price(price, tick, "down")
    derived = Decimal(maker) / 1_000_000 / worst if side == "BUY" else Decimal(maker) / 1_000_000 * worst
    assert 0 <= derived - Decimal(taker) / 1_000_000 < p.amount_quantum


def test_taker_fee_formula() -> None:
    # 100 shares at 0.40 with a 4% rate: 100 * 0.04 * 0.4 * 0.6 = 0.96
    assert vp.taker_fee(Decimal(100), Decimal("0.40"), Decimal("0.04")) == Decimal("0.96")
    assert vp.taker_fee(Decimal(100), Decimal("0.40"), Decimal(0)) == 0
