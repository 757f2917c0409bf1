"""Bot 8: diversified tail buys plus the composed market-making leg."""

from __future__ import annotations

from decimal import Decimal as D

from bot_factories import T0, VENUE, bot_config, legs, market, report, tob

from pets.bots.market_making import MarketMaker
from pets.bots.tail_risk_mm import TailRiskMM


def new_bot() -> TailRiskMM:
    bot = TailRiskMM(bot_config("bot_08", max_position_usdc=D(100)), VENUE)
    for i in range(1, 5):
        bot.on_market(
            market(
                f"m{i}",
                (f"yes{i}", f"no{i}"),
                tick="0.001",
                neg_risk=i <= 3,
                neg_risk_market_id="ev" if i <= 3 else None,
            )
        )
    return bot


def tails(bot: TailRiskMM, asset: str, mkt: str, ask: str, ts: int = T0, depth: str = "1000") -> list:  # type: ignore[type-arg]
    return [
        i
        for i in bot.on_top_of_book(tob(asset, mkt, "0.001", ask, ts_ms=ts, tick="0.001", ask_size=depth))
        if i.strategy_type == "tail_risk"
    ]


def test_buys_a_tail_outcome_once() -> None:
    bot = new_bot()
    (buy,) = tails(bot, "yes1", "m1", "0.020")
    # position_usdc 10 at 0.02 = 500 shares, as a FAK at the ask
    assert legs([buy]) == [("place", "yes1", "BUY", D("0.020"), D(500), "FAK")]
    assert tails(bot, "yes1", "m1", "0.020", ts=T0 + 1) == []  # already being bought


def test_size_limited_by_the_displayed_depth_and_the_range() -> None:
    bot = new_bot()
    assert [i.size for i in tails(bot, "yes4", "m4", "0.010", depth="120")] == [D(120)]
    assert tails(bot, "no4", "m4", "0.060") == []  # above tail_max_price 0.05
    assert tails(bot, "no1", "m1", "0.0005") == []  # below tail_min_price 0.001 (off a 0.001 grid too)


def test_diversification_limits() -> None:
    bot = new_bot()
    assert len(tails(bot, "yes1", "m1", "0.02")) == 1
    assert len(tails(bot, "yes2", "m2", "0.02")) == 1
    assert tails(bot, "yes3", "m3", "0.02") == []  # a third position in event "ev" (max 2 per event)
    assert len(tails(bot, "yes4", "m4", "0.02")) == 1
    assert tails(bot, "no4", "m4", "0.02") == []  # max_positions 3


def test_a_settled_position_frees_its_slot() -> None:
    bot = new_bot()
    (buy,) = tails(bot, "yes1", "m1", "0.02")
    bot.on_execution_report(report(buy, "fill", "500", "0.02"))
    tails(bot, "yes2", "m2", "0.02")
    assert tails(bot, "yes3", "m3", "0.02") == []
    bot.on_market(
        market(
            "m1",
            ("yes1", "no1"),
            tick="0.001",
            neg_risk=True,
            neg_risk_market_id="ev",
            closed=True,
            winning_asset_id="no1",
        )
    )
    assert len(tails(bot, "yes3", "m3", "0.02", ts=T0 + 1)) == 1


def test_market_making_leg_is_bot5_logic_under_the_same_bot() -> None:
    bot = new_bot()
    assert isinstance(bot.maker, MarketMaker)
    out = bot.on_top_of_book(tob("yes4", "m4", "0.480", "0.520", tick="0.001"))
    quotes = [i for i in out if i.strategy_type == "market_making"]
    assert len(quotes) == 2 and all(i.post_only and i.bot_id == "bot_08" for i in quotes)
    assert {i.client_order_id.split("-")[0] for i in quotes} == {"bot_08mm"}
    # its reports go to the maker, whose inventory moves; the tail leg's does not
    bot.on_execution_report(report(quotes[0], "fill", "50", str(quotes[0].price)))
    assert bot.maker.held("yes4") == D(50) and bot.held("yes4") == 0


def test_reports_of_orders_no_longer_tracked_reach_the_leg_that_made_them() -> None:
    """A fill after the order ended here counts in the inventory of the leg whose id it carries; an ack
    of an order the live executor rejected as unknown and adopted later tracks it again."""
    bot = new_bot()
    (buy,) = tails(bot, "yes1", "m1", "0.020")
    bot.on_execution_report(report(buy, "cancel"))
    assert buy.client_order_id not in bot.orders
    bot.on_execution_report(report(buy, "partial_fill", "100", "0.020"))
    assert bot.held("yes1") == D(100) and bot.maker.held("yes1") == 0
    stray = bot.maker.place("yes2", "BUY", D("0.40"), D(10), post_only=True)
    assert stray is not None
    bot.maker.on_execution_report(report(stray, "reject"))
    bot.on_execution_report(report(stray, "ack", leaves="10"))
    assert bot.maker.orders[stray.client_order_id].live and stray.client_order_id not in bot.orders
    bot.on_execution_report(report(stray, "fill", "10", "0.40"))
    assert bot.maker.held("yes2") == D(10) and bot.held("yes2") == 0
    assert bot.on_execution_report(report(buy, "ack", leaves="5")) == [] and buy.client_order_id in bot.orders
