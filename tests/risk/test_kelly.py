"""Exact Kelly with fees, against cases worked by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from pets.cli import main
from pets.risk.denial import Denial
from pets.risk.kelly import KellyStake, kelly_fraction, kelly_stake, share_cost


def test_fraction_halves_per_loss_with_a_quarter_floor() -> None:
    assert kelly_fraction(D("0.5"), D("0.25"), 0) == D("0.5")
    assert kelly_fraction(D("0.5"), D("0.25"), 1) == D("0.25")
    assert kelly_fraction(D("0.5"), D("0.25"), 2) == D("0.25")
    assert kelly_fraction(D("0.25"), D("0.25"), 0) == D("0.25")


def test_share_cost_adds_the_taker_fee_and_nothing_for_post_only() -> None:
    # 0.5 + 0.04 x 0.5 x 0.5 = 0.51 ; 0.9 + 0.072 x 0.9 x 0.1 = 0.90648
    assert share_cost(D("0.5"), D("0.04")) == D("0.51")
    assert share_cost(D("0.9"), D("0.072")) == D("0.90648")
    assert share_cost(D("0.5"), D("0.04"), post_only=True) == D("0.5")


def test_the_fee_shrinks_the_stake() -> None:
    # p 0.6 at 0.5, feeRate 0.04: c = 0.51, f* = 0.09 / 0.49 = 0.18367...
    # half Kelly of 1,000: 0.5 x 0.18367 x 1000 = 91.8367 pUSD / 0.51 = 180.072 -> 180.07 shares
    # (the fee-blind rule f* = 0.2 would buy 0.5 x 0.2 x 1000 / 0.5 = 200)
    stake = kelly_stake(D("0.6"), D("0.5"), D("0.04"), D(1000), D("0.5"))
    assert isinstance(stake, KellyStake)
    assert abs(stake.f_star - D("0.183673469")) < D("1e-9")
    assert stake.shares == D("180.07")
    assert stake.cost == D("91.8357")  # 180.07 x 0.51


def test_shares_held_count_against_the_target() -> None:
    # the 180.07-share target above with 100 held: 80.07 more, 80.07 x 0.51 = 40.8357
    stake = kelly_stake(D("0.6"), D("0.5"), D("0.04"), D(1000), D("0.5"), held=D(100))
    assert isinstance(stake, KellyStake) and stake.shares == D("80.07") and stake.cost == D("40.8357")
    full = kelly_stake(D("0.6"), D("0.5"), D("0.04"), D(1000), D("0.5"), held=D(200))
    assert isinstance(full, Denial) and "already held" in full.reason


@pytest.mark.parametrize(
    ("p", "price", "rate"),
    [
        ("0.51", "0.5", "0.04"),  # p = c = 0.51 exactly: no bet
        ("0.505", "0.5", "0.04"),  # an edge before the fee (0.505 > 0.5), none after (0.505 < 0.51)
        ("0.4", "0.5", "0"),
    ],
)
def test_no_bet_when_p_is_at_most_the_cost(p: str, price: str, rate: str) -> None:
    result = kelly_stake(D(p), D(price), D(rate), D(1000), D("0.5"))
    assert isinstance(result, Denial) and result.rule == "kelly" and "no edge" in result.reason


def test_a_post_only_order_pays_no_fee() -> None:
    # p 0.505 at 0.5 resting: c = 0.5, f* = 0.005 / 0.5 = 0.01; 0.5 x 0.01 x 1000 / 0.5 = 10 shares
    stake = kelly_stake(D("0.505"), D("0.5"), D("0.04"), D(1000), D("0.5"), post_only=True)
    assert isinstance(stake, KellyStake) and stake.f_star == D("0.01") and stake.shares == D(10)


def test_a_no_buy_uses_one_minus_p_and_the_no_price() -> None:
    # YES 0.3 likely, NO at 0.6 with feeRate 0.03: p(NO) = 0.7, c = 0.6 + 0.03 x 0.6 x 0.4 = 0.6072,
    # f* = 0.0928 / 0.3928 = 0.236253; quarter Kelly of 2,000 = 118.126 pUSD / 0.6072 = 194.543 -> 194.54
    stake = kelly_stake(1 - D("0.3"), D("0.6"), D("0.03"), D(2000), D("0.25"))
    assert isinstance(stake, KellyStake)
    assert stake.shares == D("194.54")
    assert stake.cost == D("194.54") * D("0.6072")


def test_a_stake_too_small_for_one_share_is_no_bet() -> None:
    result = kelly_stake(D("0.5001"), D("0.5"), D(0), D(1), D("0.25"))
    assert isinstance(result, Denial) and "buys no share" in result.reason


@given(
    price=st.decimals(min_value=D("0.01"), max_value=D("0.99"), places=2),
    p=st.decimals(min_value=D(0), max_value=D(1), places=3),
    rate=st.decimals(min_value=D(0), max_value=D("0.1"), places=3),
    held=st.decimals(min_value=D(0), max_value=D(500), places=2),
)
def test_a_stake_never_costs_more_than_its_share_of_the_bankroll(p: D, price: D, rate: D, held: D) -> None:
    result = kelly_stake(p, price, rate, D(2000), D("0.5"), held)
    if isinstance(result, Denial):
        return
    c = share_cost(price, rate)
    assert p > c and result.shares > 0 and result.shares == result.shares.quantize(D("0.01"))
    assert result.cost == result.shares * c
    assert (result.shares + held) * c <= D("0.5") * result.f_star * 2000


def _kelly(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["risk", "kelly", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_cli_prints_the_gate_s_stake_as_json() -> None:
    code, out = _kelly(
        "--probability", "0.6", "--price", "0.5", "--fee-rate", "0.04", "--bankroll", "1000",
        "--fraction", "0.5", "--held", "100", "--json",
    )  # fmt: skip
    assert code == 0
    row = json.loads(out)
    assert row["shares"] == "80.07" and row["cost"] == "40.8357"
    assert abs(D(row["f_star"]) - D("0.183673469")) < D("1e-9")


def test_cli_no_bet_exits_zero_with_no_shares() -> None:
    code, out = _kelly(
        "--probability", "0.505", "--price", "0.5", "--fee-rate", "0.04", "--bankroll", "1000", "--json"
    )
    row = json.loads(out)
    assert code == 0 and row["shares"] == "0" and row["cost"] == "0" and "no edge" in row["reason"]
    code, out = _kelly("--probability", "0.505", "--price", "0.5", "--fee-rate", "0.04", "--bankroll", "1000")
    assert code == 0 and out.startswith("no bet: no edge")


def test_cli_default_fraction_is_the_configured_half_kelly() -> None:
    # config/risk_management.yaml kelly.default_fraction = 0.5: the same 180.07 shares as above
    code, out = _kelly(
        "--probability", "0.6", "--price", "0.5", "--fee-rate", "0.04", "--bankroll", "1000", "--json"
    )
    assert code == 0 and json.loads(out)["shares"] == "180.07"
