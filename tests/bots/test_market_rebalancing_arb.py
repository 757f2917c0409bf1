"""Bot 1 on hand-built books: buy both legs below 1 - fees - edge, sell above, unwind one-legged baskets."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
from bot_factories import T0, VENUE, bot_config, legs, market, report, tob

from pets.bots.market_rebalancing_arb import MarketRebalancingArb
from pets.schemas.orders import OrderIntent


def new_bot() -> MarketRebalancingArb:
    bot = MarketRebalancingArb(bot_config("bot_01"), VENUE)
    bot.on_market(market())
    return bot


def books(
    bot: MarketRebalancingArb, yes: tuple[str, str], no: tuple[str, str], ts: int = T0, **kw: str
) -> list[OrderIntent]:
    out = bot.on_top_of_book(tob("yes1", "m1", yes[0], yes[1], ts_ms=ts, ask_size=kw.get("yes_size", "100")))
    return out + bot.on_top_of_book(
        tob("no1", "m1", no[0], no[1], ts_ms=ts, ask_size=kw.get("no_size", "80"))
    )


def test_buys_both_legs_for_the_size_both_books_fill() -> None:
    bot = new_bot()
    # 0.45 + 0.50 = 0.95; fees 0.03 x (0.45 x 0.55 + 0.50 x 0.50) = 0.014925; edge 0.035 >= 0.005
    intents = books(bot, ("0.44", "0.45"), ("0.49", "0.50"))
    assert legs(intents) == [
        ("place", "yes1", "BUY", D("0.45"), D(80), "FOK"),
        ("place", "no1", "BUY", D("0.50"), D(80), "FOK"),
    ]
    assert intents[0].group_id == intents[1].group_id is not None
    assert all(
        i.strategy_type == "arbitrage" and i.bot_id == "bot_01" and i.source_ts_ms == T0 for i in intents
    )
    # one basket at a time per market
    assert books(bot, ("0.44", "0.45"), ("0.49", "0.50"), ts=T0 + 1) == []


def test_no_trade_without_the_edge_after_fees() -> None:
    bot = new_bot()
    # 0.48 + 0.50 = 0.98; fees 0.03 x (0.2496 + 0.25) = 0.014988: edge 0.005012 just clears 0.005
    assert len(books(bot, ("0.47", "0.48"), ("0.49", "0.50"))) == 2
    bot = new_bot()
    # 0.49 + 0.50 = 0.99: edge after fees is negative
    assert books(bot, ("0.48", "0.49"), ("0.49", "0.50")) == []


def test_uses_the_market_fee_rate_when_stated() -> None:
    bot = MarketRebalancingArb(bot_config("bot_01"), VENUE)
    bot.on_market(market(fee_rate=D(0)))
    # no fees: 0.49 + 0.50 = 0.99 leaves exactly 0.01 >= 0.005
    assert len(books(bot, ("0.48", "0.49"), ("0.49", "0.50"))) == 2


def test_stale_or_missing_books_do_not_trade() -> None:
    bot = new_bot()
    assert bot.on_top_of_book(tob("yes1", "m1", "0.44", "0.45")) == []
    assert bot.on_top_of_book(tob("no1", "m1", "0.49", "0.50", stale=True)) == []


def test_size_is_capped_by_max_basket_shares_held() -> None:
    bot = new_bot()
    first = books(bot, ("0.44", "0.45"), ("0.49", "0.50"), yes_size="1000", no_size="1000")
    assert [i.size for i in first] == [D(200), D(200)]
    for leg in first:
        bot.on_execution_report(report(leg, "fill", "150", str(leg.price)))
    # 150 held: 50 more make the cap of 200 (a second later: the legs of one basket share the rate window)
    again = books(bot, ("0.43", "0.44"), ("0.49", "0.50"), ts=T0 + 1000, yes_size="1000", no_size="1000")
    assert [i.size for i in again] == [D(50), D(50)]


def test_a_basket_that_came_back_short_is_not_repeated_at_the_same_prices() -> None:
    bot = new_bot()
    for leg in books(bot, ("0.44", "0.45"), ("0.49", "0.50")):
        bot.on_execution_report(report(leg, "cancel"))  # both FOK legs killed: the liquidity was not there
    assert books(bot, ("0.44", "0.45"), ("0.49", "0.50"), ts=T0 + 1000) == []
    assert len(books(bot, ("0.44", "0.45"), ("0.48", "0.49"), ts=T0 + 1001)) == 2  # the book moved


def test_sells_held_baskets_when_bids_sum_above_the_threshold() -> None:
    bot = new_bot()
    for leg in books(bot, ("0.44", "0.45"), ("0.49", "0.50")):
        bot.on_execution_report(report(leg, "fill", "80", str(leg.price)))
    # bids 0.52 + 0.50 = 1.02, minus fees 0.014988 = 1.005012 > 1.005
    sells = books(bot, ("0.52", "0.60"), ("0.50", "0.60"), ts=T0 + 1000)
    assert legs(sells) == [
        ("place", "yes1", "SELL", D("0.52"), D(80), "FOK"),
        ("place", "no1", "SELL", D("0.50"), D(80), "FOK"),
    ]


def test_one_legged_basket_is_unwound_at_once_when_the_other_leg_dies() -> None:
    bot = new_bot()
    yes_leg, no_leg = books(bot, ("0.44", "0.45"), ("0.49", "0.50"))
    assert bot.on_execution_report(report(yes_leg, "fill", "80", "0.45")) == []
    unwind = bot.on_execution_report(report(no_leg, "cancel"))  # the FOK was killed
    assert legs(unwind) == [("place", "yes1", "SELL", D("0.44"), D(80), "FAK")]
    assert unwind[0].group_id is None


def test_one_legged_basket_is_unwound_after_unwind_after_ms() -> None:
    bot = new_bot()
    yes_leg, no_leg = books(bot, ("0.44", "0.45"), ("0.49", "0.50"))
    bot.on_execution_report(report(yes_leg, "partial_fill", "30", "0.45", leaves="50"))
    assert bot.on_top_of_book(tob("yes1", "m1", "0.43", "0.47", ts_ms=T0 + 1999)) == []
    out = bot.on_top_of_book(tob("yes1", "m1", "0.43", "0.47", ts_ms=T0 + 2000))
    # the unanswered NO leg and the YES remainder are cancelled, the 30 YES filled are sold back
    assert sorted(legs(out)) == sorted(
        [
            ("cancel", "no1", "BUY", D("0.50"), D(80), "GTC"),
            ("cancel", "yes1", "BUY", D("0.45"), D(50), "GTC"),
            ("place", "yes1", "SELL", D("0.43"), D(30), "FAK"),
        ]
    )
    assert {i.replaces for i in out if i.action == "cancel"} == {
        yes_leg.client_order_id,
        no_leg.client_order_id,
    }


def test_an_unwind_without_a_buyer_waits_for_the_book() -> None:
    bot = new_bot()
    yes_leg, no_leg = books(bot, ("0.44", "0.45"), ("0.49", "0.50"))
    bot.on_execution_report(report(yes_leg, "fill", "80", "0.45"))
    (sell,) = bot.on_execution_report(report(no_leg, "cancel"))
    assert bot.on_execution_report(report(sell, "cancel")) == []  # nobody bought: no immediate retry
    assert bot.on_top_of_book(tob("yes1", "m1", "0.44", "0.47", ts_ms=T0 + 4)) == []  # same bid: no retry
    retry = bot.on_top_of_book(tob("yes1", "m1", "0.42", "0.47", ts_ms=T0 + 5))
    assert legs(retry) == [("place", "yes1", "SELL", D("0.42"), D(80), "FAK")]


def test_client_ids_are_deterministic() -> None:
    def run() -> list[str]:
        bot = new_bot()
        return [i.client_order_id for i in books(bot, ("0.44", "0.45"), ("0.49", "0.50"))]

    first = run()
    assert first == run() and len(set(first)) == 2 and all(cid.startswith("bot_01-") for cid in first)


def test_a_stopped_bot_proposes_nothing_until_started() -> None:
    from pets.schemas.control import ControlCommand

    bot = new_bot()
    bot.on_control(ControlCommand(command_id="1", command="stop", bot_id="bot_01", ts_ns=0))
    assert books(bot, ("0.44", "0.45"), ("0.49", "0.50")) == []
    bot.on_control(ControlCommand(command_id="2", command="start", bot_id="bot_01", ts_ns=0))
    assert len(books(bot, ("0.44", "0.45"), ("0.49", "0.50"), ts=T0 + 1)) == 2


def test_does_not_buy_again_the_size_its_own_fills_took() -> None:
    bot = new_bot()
    for leg in books(bot, ("0.44", "0.45"), ("0.49", "0.50")):  # 80 of each (NO shows 80)
        bot.on_execution_report(report(leg, "fill", "80", str(leg.price)))
    # the venue has not updated those levels yet: YES still shows 100 at 0.45 (20 left), NO 80 (none)
    assert books(bot, ("0.44", "0.45"), ("0.49", "0.50"), ts=T0 + 1000) == []
    # the venue updated NO's level (now 60 shown, our take already out of it): 20 left on YES decide
    again = books(bot, ("0.44", "0.45"), ("0.49", "0.50"), ts=T0 + 2000, no_size="60")
    assert [(i.asset_id, i.size) for i in again] == [("yes1", D(20)), ("no1", D(20))]


def test_legs_are_equal_and_on_the_size_grid() -> None:
    bot = MarketRebalancingArb(bot_config("bot_01", max_position_usdc=D(100)), VENUE)
    bot.on_market(market())
    intents = books(bot, ("0.44", "0.45"), ("0.49", "0.50"), yes_size="1000.37", no_size="999.99")
    # a set costs 0.95 + the taker fees 0.03 x (0.45 x 0.55 + 0.50 x 0.50) = 0.964925, as risk counts
    # it: 100 / 0.964925 = 103.635: both legs 103.63, on the 0.01 grid (at 0.95 alone, 105.26 sets
    # would cost 101.57 with fees: over the maximum, and risk denies a basket whole)
    assert [i.size for i in intents] == [D("103.63"), D("103.63")]


def test_a_fee_free_category_is_not_charged_another_category_s_fee() -> None:
    venue = msgspec.structs.replace(VENUE, fee_rates={"default": D("0.03"), "geopolitics": D(0)})
    bot = MarketRebalancingArb(bot_config("bot_01"), venue)
    bot.on_market(market(category="geopolitics"))
    # 0.46 + 0.53 = 0.99: the venue charges geopolitics nothing, edge 0.01 >= 0.005 -> bought (at the
    # default 0.03 the fees 0.03 x (0.2484 + 0.2491) = 0.014925 would leave no edge)
    assert len(books(bot, ("0.45", "0.46"), ("0.52", "0.53"))) == 2


def test_the_market_category_fee_is_counted() -> None:
    venue = msgspec.structs.replace(VENUE, fee_rates={"default": D("0.03"), "crypto": D("0.072")})
    crypto = MarketRebalancingArb(bot_config("bot_01"), venue)
    crypto.on_market(market(category="crypto"))
    # 0.46 + 0.50 = 0.96: the venue charges crypto's 0.072 x (0.2484 + 0.25) = 0.035885 -> edge 0.0041
    assert books(crypto, ("0.45", "0.46"), ("0.49", "0.50")) == []
    default = MarketRebalancingArb(bot_config("bot_01"), venue)
    default.on_market(market(category="default"))
    # the same books at 0.03: fees 0.014952, edge 0.025 -> bought
    assert len(books(default, ("0.45", "0.46"), ("0.49", "0.50"))) == 2


def test_a_late_top_of_book_opens_no_basket() -> None:
    bot = new_bot()
    bot.on_top_of_book(tob("yes1", "m1", "0.48", "0.50", ts_ms=T0 + 500))
    # the NO book of an older venue time, published after the YES book of T0 + 500: it may have moved
    assert bot.on_top_of_book(tob("no1", "m1", "0.44", "0.45", ts_ms=T0 + 400)) == []
    assert len(bot.on_top_of_book(tob("no1", "m1", "0.44", "0.45", ts_ms=T0 + 500))) == 2


def test_no_basket_within_a_second_of_the_last_order() -> None:
    bot = new_bot()
    yes_leg, no_leg = books(bot, ("0.44", "0.45"), ("0.49", "0.50"))
    bot.on_execution_report(report(yes_leg, "fill", "80", "0.45"))
    (unwind,) = bot.on_execution_report(report(no_leg, "cancel", ts_ms=T0 + 100))
    bot.on_execution_report(report(unwind, "fill", "80", "0.44", ts_ms=T0 + 100))
    # a new opportunity 0.9 s after the unwind: its legs would share the risk gate's one-second window
    assert books(bot, ("0.44", "0.45"), ("0.48", "0.49"), ts=T0 + 1000) == []
    assert len(books(bot, ("0.44", "0.45"), ("0.48", "0.49"), ts=T0 + 1100)) == 2
