"""The zone rules of config/zone_framework.yaml: per named strategy, per zone, with the exceptions.

The expected table is the product's own statement (zone 1 tail_risk, contrarian, value_betting; zone
2 value_betting, news_scalping, copy_trading; zone 3 arbitrage, market_making and directional bets
above 0.52; zone 4 market_making, arbitrage; zone 5 complete-set arbitrage only), plus the zones the
file chooses for esports_live and long_term_value and its two written exceptions (market making in
zones 1-2; complete-set baskets everywhere). It is written out here, not read from the file.
"""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
import pytest
from risk_factories import MS, engine_with_books, intent

from pets.risk.zones import check_zone, zone_for
from pets.schemas.config import PetsConfig, ZoneException
from pets.schemas.orders import ApprovedOrder, OrderDenied, OrderIntent

# a price inside each zone
PRICE = {1: D("0.10"), 2: D("0.30"), 3: D("0.50"), 4: D("0.70"), 5: D("0.90")}
DIRECTIONAL = (
    "contrarian", "value_betting", "news_scalping", "copy_trading", "esports_live", "long_term_value"
)
# zones where each strategy buys without any probability condition (no basket)
ALLOWED = {
    "tail_risk": {1},
    "contrarian": {1},
    "value_betting": {1, 2},
    "news_scalping": {2},
    "copy_trading": {2},
    "esports_live": {2},
    "long_term_value": {1, 2},
    "market_making": {1, 2, 3, 4},  # 1-2 by the written exception
    "arbitrage": {3, 4, 5},
}


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
    denial = check_zone(D("1.01"), "arbitrage", None, config.zones, basket=True)
    assert denial is not None and denial.rule == "zone" and denial.reason == "price 1.01 is in no zone"


@pytest.mark.parametrize("strategy", sorted(ALLOWED))
@pytest.mark.parametrize("zone", [1, 2, 3, 4, 5])
def test_each_named_strategy_in_each_zone(config: PetsConfig, strategy: str, zone: int) -> None:
    # a probability well above 0.52: only the lists (and zone 3's rule for directional bets) decide
    denial = check_zone(PRICE[zone], strategy, D("0.99"), config.zones)
    allowed = zone in ALLOWED[strategy] or (zone == 3 and strategy in DIRECTIONAL)
    if allowed:
        assert denial is None
    else:
        assert denial is not None
        assert (denial.rule, denial.reason) == ("zone", f"zone {zone}: {strategy} prohibited")


@pytest.mark.parametrize("strategy", DIRECTIONAL)
def test_zone_3_directional_needs_probability_above_052(config: PetsConfig, strategy: str) -> None:
    at_floor = check_zone(D("0.50"), strategy, D("0.52"), config.zones)
    assert at_floor is not None
    assert at_floor.reason == f"zone 3: {strategy} needs probability > 0.52 (got 0.52)"
    missing = check_zone(D("0.50"), strategy, None, config.zones)
    assert missing is not None
    assert missing.reason == f"zone 3: {strategy} needs probability > 0.52 (none given)"
    assert check_zone(D("0.50"), strategy, D("0.5201"), config.zones) is None


@pytest.mark.parametrize("zone", [4, 5])
@pytest.mark.parametrize("strategy", DIRECTIONAL)
def test_directional_prohibited_in_zones_4_and_5_whatever_the_probability(
    config: PetsConfig, zone: int, strategy: str
) -> None:
    denial = check_zone(PRICE[zone], strategy, D("0.999"), config.zones)
    assert denial is not None and denial.reason == f"zone {zone}: {strategy} prohibited"


@pytest.mark.parametrize("zone", [1, 2, 3, 4, 5])
def test_complete_set_basket_legs_pass_in_every_zone(config: PetsConfig, zone: int) -> None:
    assert check_zone(PRICE[zone], "arbitrage", None, config.zones, basket=True) is None


@pytest.mark.parametrize("strategy", ["copy_trading", "market_making", "tail_risk"])
def test_the_basket_exception_is_only_for_arbitrage(config: PetsConfig, strategy: str) -> None:
    denial = check_zone(PRICE[5], strategy, D("0.99"), config.zones, basket=True)
    assert denial is not None and denial.reason == f"zone 5: {strategy} prohibited"


def test_the_rule_follows_the_price_of_the_token_bought(config: PetsConfig) -> None:
    # buying NO at 0.85 is zone 5 even though the YES side trades at 0.15
    assert check_zone(D("0.85"), "contrarian", D("0.9"), config.zones) is not None
    assert check_zone(D("0.15"), "contrarian", D("0.2"), config.zones) is None


def test_exceptions_come_from_the_file(config: PetsConfig) -> None:
    """Without the file's market-making exception the maker may not quote in zone 1."""
    assert check_zone(PRICE[1], "market_making", None, config.zones) is None
    kept = tuple(e for e in config.zones.exceptions if e.strategy != "market_making")
    literal = msgspec.structs.replace(config.zones, exceptions=kept)
    denial = check_zone(PRICE[1], "market_making", None, literal)
    assert denial is not None and denial.reason == "zone 1: market_making prohibited"
    widened = msgspec.structs.replace(
        config.zones, exceptions=(*kept, ZoneException(strategy="copy_trading", zones=(1,), reason="test"))
    )
    assert check_zone(PRICE[1], "copy_trading", None, widened) is None


# ------------------------------------------------------------------ the gate: RiskEngine by bot id


def verdicts(config: PetsConfig, *orders: OrderIntent) -> list[OrderDenied | ApprovedOrder]:
    engine = engine_with_books(config)
    out = [v for order in orders for v in engine.on_intent(order, order.source_ts_ms * MS)]
    assert all(isinstance(v, OrderDenied | ApprovedOrder) for v in out), out
    return out  # type: ignore[return-value]


def reason(verdict: OrderDenied | ApprovedOrder) -> str | None:
    """The zone denial's reason; None when the zone check passed (a later rule may still deny)."""
    return verdict.reason if isinstance(verdict, OrderDenied) and verdict.rule == "zone" else None


def test_the_engine_judges_an_order_as_its_bots_named_zone_strategy(config: PetsConfig) -> None:
    maker = {"bot_id": "bot_05", "strategy_type": "market_making", "post_only": True}
    [high, low] = verdicts(config, intent(price="0.90", **maker), intent(price="0.10", **maker))
    assert reason(high) == "zone 5: market_making prohibited"
    assert reason(low) is None  # zone 1 by the file's exception
    copy = {"bot_id": "bot_04", "strategy_type": "directional", "probability": D("0.95")}
    [fav] = verdicts(config, intent(price="0.70", **copy))
    assert reason(fav) == "zone 4: news_scalping prohibited"


def test_bot_8_tail_leg_and_quoting_leg_are_judged_separately(config: PetsConfig) -> None:
    [tail_z2, quote_z1] = verdicts(
        config,
        intent(bot_id="bot_08", strategy_type="tail_risk", price="0.25", probability=D("0.9")),
        intent(bot_id="bot_08", strategy_type="market_making", post_only=True, price="0.03", size="20"),
    )
    assert reason(tail_z2) == "zone 2: tail_risk prohibited"
    assert reason(quote_z1) is None


def test_an_order_type_the_bot_names_no_zone_strategy_for_is_denied(config: PetsConfig) -> None:
    [v] = verdicts(config, intent(bot_id="bot_05", strategy_type="directional", probability=D("0.9")))
    assert reason(v) == "bot_05 names no zone strategy for directional orders"


def test_a_complete_set_basket_passes_where_a_lone_arbitrage_buy_does_not(config: PetsConfig) -> None:
    lone = intent(price="0.10", size="20", order_type="FOK")
    legs = [
        intent(price=price, size="20", order_type="FOK", asset_id=asset, group_id="g1", group_size=2)
        for price, asset in (("0.10", "yes1"), ("0.85", "no1"))
    ]
    [alone, *basket] = verdicts(config, lone, *legs)
    assert reason(alone) == "zone 1: arbitrage prohibited"
    assert [reason(v) for v in basket] == [None, None]
    assert all(isinstance(v, ApprovedOrder) for v in basket)
