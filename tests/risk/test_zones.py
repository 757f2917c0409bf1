from __future__ import annotations

from decimal import Decimal as D

import pytest

from pets.risk.zones import check_zone, zone_for
from pets.schemas.config import PetsConfig


@pytest.mark.parametrize(
    ("price", "zone"),
    [
        ("0", 1),
        ("0.001", 1),
        ("0.1999", 1),
        ("0.20", 2),
        ("0.40", 3),
        ("0.5999", 3),
        ("0.60", 4),
        ("0.80", 5),
        ("0.999", 5),
        ("1", 5),
    ],
)
def test_zone_boundaries_are_half_open_and_cover_zero_to_one(
    config: PetsConfig, price: str, zone: int
) -> None:
    found = zone_for(D(price), config.zones.zones)
    assert found is not None and found.zone == zone


def test_outside_zero_one_is_in_no_zone(config: PetsConfig) -> None:
    assert zone_for(D("1.01"), config.zones.zones) is None
    assert zone_for(D("-0.01"), config.zones.zones) is None
    denial = check_zone(D("1.01"), "arbitrage", None, config.zones.zones)
    assert denial is not None and denial.rule == "zone"


@pytest.mark.parametrize("price", ["0.60", "0.75", "0.80", "0.97"])
def test_directional_prohibited_in_zones_4_and_5(config: PetsConfig, price: str) -> None:
    denial = check_zone(D(price), "directional", D("0.99"), config.zones.zones)
    assert denial is not None
    zone = 4 if D(price) < D("0.80") else 5
    assert denial.reason == f"zone {zone}: directional bets prohibited"


def test_zone_3_directional_needs_probability_above_052(config: PetsConfig) -> None:
    zones = config.zones.zones
    at_floor = check_zone(D("0.50"), "directional", D("0.52"), zones)
    assert at_floor is not None and "probability > 0.52" in at_floor.reason
    missing = check_zone(D("0.50"), "directional", None, zones)
    assert missing is not None and "none given" in missing.reason
    assert check_zone(D("0.50"), "directional", D("0.5201"), zones) is None


def test_zone_rule_follows_the_price_of_the_token_bought(config: PetsConfig) -> None:
    # buying NO at 0.85 is zone 5 even though the YES side trades at 0.15
    assert check_zone(D("0.85"), "directional", D("0.9"), config.zones.zones) is not None
    assert check_zone(D("0.15"), "directional", D("0.2"), config.zones.zones) is None


def test_tail_risk_only_in_zone_1_and_arbitrage_everywhere(config: PetsConfig) -> None:
    zones = config.zones.zones
    assert check_zone(D("0.03"), "tail_risk", None, zones) is None
    denied = check_zone(D("0.25"), "tail_risk", None, zones)
    assert denied is not None and denied.reason == "zone 2: tail_risk bets prohibited"
    for price in ("0.01", "0.3", "0.5", "0.7", "0.99"):
        assert check_zone(D(price), "arbitrage", None, zones) is None
        assert check_zone(D(price), "market_making", None, zones) is None
