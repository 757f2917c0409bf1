from __future__ import annotations

from decimal import Decimal as D

import pytest

from pets.risk import venue_rules as vr


@pytest.mark.parametrize(
    ("price", "tick", "ok"),
    [
        ("0.45", "0.01", True),
        ("0.455", "0.01", False),
        ("0.455", "0.005", True),
        ("0.4525", "0.0025", True),
        ("0.4526", "0.0025", False),
        ("0.5", "0.1", True),
        ("0.55", "0.1", False),
        ("0.0001", "0.0001", True),
        ("0", "0.01", False),
        ("1", "0.01", False),
    ],
)
def test_tick_grid(price: str, tick: str, ok: bool) -> None:
    denial = vr.check_tick(D(price), D(tick))
    assert (denial is None) == ok
    if denial:
        assert denial.rule == "tick"


def test_unknown_tick_size() -> None:
    denial = vr.check_tick(D("0.5"), D("0.02"))
    assert denial is not None and denial.reason == "unknown tick size 0.02"


def test_min_size_resting_and_marketable() -> None:
    assert vr.check_min_size(D(5), D("0.5"), "GTC", D(5), D(1)) is None
    low = vr.check_min_size(D("4.99"), D("0.5"), "GTC", D(5), D(1))
    assert low is not None and low.rule == "min_size"
    # a FOK of 2 shares at 0.5 is 1 USDC: the marketable minimum, fine below 5 shares
    assert vr.check_min_size(D(2), D("0.5"), "FOK", D(5), D(1)) is None
    assert vr.check_min_size(D("1.99"), D("0.5"), "FAK", D(5), D(1)) is not None


def test_amount_precision() -> None:
    assert vr.check_precision("BUY", D("0.45"), D("10.01"), D("0.01")) is None
    denial = vr.check_precision("BUY", D("0.45"), D("10.001"), D("0.01"))
    assert denial is not None and denial.rule == "precision"


def test_post_only_rules() -> None:
    denial = vr.check_post_only("market_making", False, "GTC")
    assert denial is not None and denial.reason == "market-making orders must be post-only"
    assert vr.check_post_only("market_making", True, "GTD") is None
    fok = vr.check_post_only("arbitrage", True, "FOK")
    assert fok is not None and fok.rule == "post_only"
    assert vr.check_post_only("arbitrage", False, "FOK") is None
