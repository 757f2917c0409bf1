"""Bot 6 on a hand-built three-outcome neg-risk event."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from bot_factories import T0, VENUE, bot_config, legs, market, report, tob

from pets.bots.multi_outcome_arb import MultiOutcomeArb
from pets.schemas.orders import OrderIntent

OUTCOMES = ("a", "b", "c")


def new_bot(fee_rate: str = "0", **changes: Any) -> MultiOutcomeArb:
    bot = MultiOutcomeArb(bot_config("bot_06", **changes), VENUE)
    for o in OUTCOMES:
        bot.on_market(
            market(f"m{o}", (f"y{o}", f"n{o}"), neg_risk=True, neg_risk_market_id="ev", fee_rate=D(fee_rate))
        )
    return bot


def feed(
    bot: MultiOutcomeArb,
    yes_asks: list[str],
    no_asks: list[str],
    ts: int = T0,
    depth: str = "100",
    stale: str = "",
) -> list[OrderIntent]:
    out: list[OrderIntent] = []
    for o, y, n in zip(OUTCOMES, yes_asks, no_asks, strict=True):
        out += bot.on_top_of_book(tob(f"n{o}", f"m{o}", "0.01", n, ts_ms=ts, ask_size=depth))
        out += bot.on_top_of_book(
            tob(f"y{o}", f"m{o}", "0.01", y, ts_ms=ts, ask_size=depth, stale=o == stale)
        )
    return out


def test_buys_the_yes_basket_when_it_costs_less_than_one() -> None:
    bot = new_bot()
    # 0.30 + 0.30 + 0.35 = 0.95 < 1 - 0.01; 100 shares each (the thinnest level), 95 USDC <= 500
    intents = feed(bot, ["0.30", "0.30", "0.35"], ["0.75", "0.75", "0.70"])
    assert legs(intents) == [
        ("place", "ya", "BUY", D("0.30"), D(100), "FOK"),
        ("place", "yb", "BUY", D("0.30"), D(100), "FOK"),
        ("place", "yc", "BUY", D("0.35"), D(100), "FOK"),
    ]
    assert len({i.group_id for i in intents}) == 1 and intents[0].group_id is not None
    assert {i.market for i in intents} == {"ma", "mb", "mc"}


def test_fees_and_edge_are_counted() -> None:
    # 0.33 + 0.33 + 0.33 = 0.99: edge 0.01 exactly without fees, gone with 3% fees
    assert len(feed(new_bot("0"), ["0.33", "0.33", "0.33"], ["0.9", "0.9", "0.9"])) == 3
    assert feed(new_bot("0.03"), ["0.33", "0.33", "0.33"], ["0.9", "0.9", "0.9"]) == []


def test_size_is_limited_by_the_basket_budget() -> None:
    bot = new_bot()
    intents = feed(bot, ["0.30", "0.30", "0.35"], ["0.9", "0.9", "0.9"], depth="10000")
    # 500 USDC / 0.95 per basket = 526.31 baskets (no fee on these markets)
    assert {i.size for i in intents} == {D("526.31")}
    taxed = feed(new_bot("0.04"), ["0.30", "0.30", "0.35"], ["0.9", "0.9", "0.9"], depth="10000")
    # with feeRate 0.04 a set costs risk 0.95 + 0.04 x (0.21 + 0.21 + 0.2275) = 0.9759: 512.34 sets
    assert {i.size for i in taxed} == {D("512.34")}


def test_no_side_basket_pays_n_minus_one() -> None:
    bot = new_bot()
    # YES asks sum 1.05 (no edge); NO asks sum 0.60 + 0.65 + 0.70 = 1.95 < 2 - 2 x 0.01
    intents = feed(bot, ["0.35", "0.35", "0.35"], ["0.60", "0.65", "0.70"])
    assert [(i.asset_id, i.side, i.price) for i in intents] == [
        ("na", "BUY", D("0.60")),
        ("nb", "BUY", D("0.65")),
        ("nc", "BUY", D("0.70")),
    ]


def test_needs_every_outcome_fresh() -> None:
    assert feed(new_bot(), ["0.30", "0.30", "0.35"], ["0.9", "0.9", "0.9"], stale="b") == []
    bot = new_bot()
    bot.on_market(market("md", ("yd", "nd"), neg_risk=True, neg_risk_market_id="ev"))
    assert feed(bot, ["0.30", "0.30", "0.35"], ["0.9", "0.9", "0.9"]) == []  # no book for the 4th outcome


def test_ignores_markets_outside_neg_risk_events() -> None:
    bot = MultiOutcomeArb(bot_config("bot_06"), VENUE)
    bot.on_market(market())
    assert bot.on_top_of_book(tob("yes1", "m1", "0.01", "0.30")) == []


def test_uneven_basket_is_rebalanced() -> None:
    bot = new_bot()
    a, b, c = feed(bot, ["0.30", "0.30", "0.35"], ["0.9", "0.9", "0.9"])
    bot.on_execution_report(report(a, "fill", "100", "0.30"))
    bot.on_execution_report(report(b, "fill", "100", "0.30"))
    unwind = bot.on_execution_report(report(c, "cancel"))
    assert legs(unwind) == [
        ("place", "ya", "SELL", D("0.01"), D(100), "FAK"),
        ("place", "yb", "SELL", D("0.01"), D(100), "FAK"),
    ]


def test_does_not_buy_again_the_size_its_own_fills_took() -> None:
    bot = new_bot()
    for leg in feed(bot, ["0.30", "0.30", "0.35"], ["0.9", "0.9", "0.9"]):
        bot.on_execution_report(report(leg, "fill", "100", str(leg.price)))
    # the same levels, not yet updated by the venue: we took all 100 shown on every leg
    assert feed(bot, ["0.30", "0.30", "0.35"], ["0.9", "0.9", "0.9"], ts=T0 + 1000) == []
    # the venue updated the levels (200 shown now): that size is fresh
    again = feed(bot, ["0.30", "0.30", "0.35"], ["0.9", "0.9", "0.9"], ts=T0 + 2000, depth="200")
    assert {i.size for i in again} == {D(200)} and len(again) == 3


def test_sets_held_count_against_max_position_usdc() -> None:
    bot = new_bot(max_position_usdc=D(600))
    first = feed(bot, ["0.30", "0.30", "0.35"], ["0.9", "0.9", "0.9"], depth="500")
    for leg in first:  # 500 USDC / 0.95 = 526.31 asked, 500 shown: 500 sets for 475 USDC
        bot.on_execution_report(report(leg, "fill", str(leg.size), str(leg.price)))
    assert {i.size for i in first} == {D(500)}
    # max_position_usdc 600 - 475 held leaves 125: 125 / 0.95 = 131.57 sets of the fresh 1000 shown
    again = feed(bot, ["0.30", "0.30", "0.35"], ["0.9", "0.9", "0.9"], ts=T0 + 1000, depth="1000")
    assert {i.size for i in again} == {D("131.57")}


def test_a_late_top_of_book_opens_no_basket() -> None:
    bot = new_bot()
    bot.on_top_of_book(tob("nc", "mc", "0.01", "0.9", ts_ms=T0 + 500))
    assert feed(bot, ["0.30", "0.30", "0.35"], ["0.9", "0.9", "0.9"], ts=T0 + 400) == []
    assert len(feed(bot, ["0.30", "0.30", "0.35"], ["0.9", "0.9", "0.9"], ts=T0 + 500)) == 3
