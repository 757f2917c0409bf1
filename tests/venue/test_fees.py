"""The venue fee formula: taker fee = shares x feeRate x p x (1 - p); makers get a share of it."""

from __future__ import annotations

from decimal import Decimal

from pets.schemas.config import VenueConfig
from pets.venue.fees import FeeSchedule, maker_rebate, taker_fee

D = Decimal


def test_taker_fee_examples_worked_by_hand() -> None:
    assert taker_fee(D(100), D("0.5"), D("0.03")) == D("0.75")  # 100 x .03 x .5 x .5
    assert taker_fee(D(200), D("0.9"), D("0.072")) == D("1.296")  # 200 x .072 x .9 x .1
    assert taker_fee(D(50), D("0.25"), D("0")) == 0  # geopolitics: no fee
    # 7 x 0.072 x 0.333 x 0.667 = 0.111943944 -> cut down to the 1e-6 unit of pUSD
    assert taker_fee(D(7), D("0.333"), D("0.072")) == D("0.111943")


def test_fee_is_symmetric_in_p_and_vanishes_at_the_extremes() -> None:
    for p in ("0.01", "0.2", "0.37", "0.5"):
        assert taker_fee(D(100), D(p), D("0.04")) == taker_fee(D(100), 1 - D(p), D("0.04"))
    assert taker_fee(D(1000), D("0.001"), D("0.03")) == D("0.02997")  # 1000 x .03 x .001 x .999


def test_maker_rebate_is_the_configured_share_of_the_taker_fee() -> None:
    assert maker_rebate(D(100), D("0.4"), D("0.03"), D("0.2")) == D("0.144")  # 0.72 x 20%
    assert maker_rebate(D(3), D("0.33"), D("0.03"), D("0.25")) == D("0.004974")  # .0198990 x .25 cut


def test_schedule_uses_the_market_rate_then_the_category_then_default() -> None:
    venue = VenueConfig(
        fee_rates={"crypto": D("0.072"), "default": D("0.03")},
        maker_rebate_share=D("0.2"),
        min_order_shares=D(5),
        min_marketable_usdc=D(1),
        size_decimals=2,
        max_batch_orders=15,
    )
    schedule = FeeSchedule.from_config(venue)
    assert schedule.rate("crypto") == D("0.072")
    assert schedule.rate("sports") == D("0.03")
    assert schedule.rate("crypto", D("0.01")) == D("0.01")
