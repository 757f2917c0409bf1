"""Bot 4, news scalping: the edge window, "already priced?", the marketable limit with a slippage cap,
size weighted by reliability, and the exits (take-profit, stop-loss, max hold; passive first)."""

from __future__ import annotations

from decimal import Decimal as D

from bot_factories import CONFIG, T0, VENUE, bot_config, legs, market, report, tob

from pets.bots.news_scalping import NewsScalping
from pets.flows.recovery import freeze, thaw
from pets.schemas.orders import OrderIntent
from pets.schemas.signals import Signal
from signal_bots import signal
from venue_factories import MS

S = 1000  # ms per s


def new_bot() -> NewsScalping:
    bot = NewsScalping(bot_config("bot_04"), VENUE)
    bot.use_zones(CONFIG.zones)
    bot.on_market(market("m1"))
    return bot


def books(bot: NewsScalping, bid: str, ask: str, ts: int) -> list[OrderIntent]:
    """The YES book at bid/ask and the NO book mirrored."""
    out = bot.on_top_of_book(tob("yes1", "m1", bid, ask, ts_ms=ts, bid_size="1000", ask_size="1000"))
    no_bid, no_ask = str(1 - D(ask)), str(1 - D(bid))
    return out + bot.on_top_of_book(
        tob("no1", "m1", no_bid, no_ask, ts_ms=ts, bid_size="1000", ask_size="1000")
    )


def news(
    at_ms: int, probability: str = "0.45", confidence: str = "0.8", n: int = 1, **changes: object
) -> Signal:
    return signal(n, ts_ns=at_ms * MS, expires_ns=(at_ms + 90 * S) * MS, probability=D(probability),
                  confidence=D(confidence), **changes)  # fmt: skip


def test_a_young_item_buys_at_the_ask_plus_the_slippage_cap_sized_by_reliability() -> None:
    bot = new_bot()
    books(bot, "0.29", "0.30", T0)
    books(bot, "0.29", "0.30", T0 + 20 * S)
    [intent] = bot.on_signal(news(T0 + 5 * S))  # 15 s old
    # limit = ask 0.30 + 2 ticks = 0.32 (below p 0.45); 200 x confidence 0.8 = 160 pUSD / 0.32 = 500 shares
    assert legs([intent]) == [("place", "yes1", "BUY", D("0.32"), D("500.00"), "FAK")]
    assert intent.cause is not None and intent.cause.source == "news" and intent.cause.signal_id == "s1"


def test_the_limit_never_passes_the_forecast() -> None:
    bot = new_bot()
    books(bot, "0.29", "0.30", T0)
    [intent] = bot.on_signal(news(T0, probability="0.315"))
    assert intent.price == D("0.31")  # 0.315 rounded down onto the tick grid, under ask + 2 ticks


def test_an_item_older_than_the_window_is_ignored() -> None:
    bot = new_bot()
    books(bot, "0.29", "0.30", T0)
    books(bot, "0.29", "0.30", T0 + 91 * S)
    assert bot.on_signal(news(T0)) == []
    assert bot.ignored == {"too_old": 1}


def test_an_item_the_book_has_already_priced_is_ignored() -> None:
    bot = new_bot()
    books(bot, "0.29", "0.31", T0 + 10 * S)  # mid 0.30: up 0.05 > 0.03 since the item's 0.25
    assert bot.on_signal(news(T0, reference_mid=D("0.25"))) == []
    assert bot.ignored == {"already_priced": 1}
    # up 0.03 since 0.27: not more than max_price_move, so not priced yet
    [intent] = bot.on_signal(news(T0, n=2, reference_mid=D("0.27")))
    assert intent.asset_id == "yes1"


def test_a_sell_signal_buys_the_complement_priced_off_the_mirrored_mid() -> None:
    """SELL yes1 at reference mid 0.72 -> buy no1, whose mid was then 1 - 0.72 = 0.28."""
    bot = new_bot()
    books(bot, "0.67", "0.69", T0 + 10 * S)  # YES mid 0.68: NO mid 0.32, up 0.04 > 0.03
    sell = news(T0, probability="0.55", side="SELL", reference_mid=D("0.72"))
    assert bot.on_signal(sell) == []
    assert bot.ignored == {"already_priced": 1}
    books(bot, "0.69", "0.71", T0 + 11 * S)  # YES mid 0.70: NO mid 0.30, up 0.02
    [intent] = bot.on_signal(news(T0, n=2, probability="0.55", side="SELL", reference_mid=D("0.72")))
    # NO at ask 1 - 0.69 = 0.31 + 2 ticks = 0.33, under its probability 1 - 0.55 = 0.45
    assert (intent.asset_id, intent.side, intent.price) == ("no1", "BUY", D("0.33"))


def test_tops_matter_to_it_only_while_it_holds_a_position() -> None:
    bot = new_bot()
    books(bot, "0.29", "0.30", T0)
    assert NewsScalping.skips_tops and not bot.wants_tops()
    enter(bot)
    assert bot.wants_tops()


def test_low_confidence_and_no_edge_are_ignored() -> None:
    bot = new_bot()
    books(bot, "0.29", "0.30", T0)
    assert bot.on_signal(news(T0, confidence="0.5")) == []
    assert bot.on_signal(news(T0, probability="0.30", n=2)) == []  # the ask already pays the forecast
    assert bot.ignored == {"low_confidence": 1, "no_edge": 1}


def test_a_directional_buy_in_a_prohibited_zone_is_not_proposed() -> None:
    bot = new_bot()
    books(bot, "0.69", "0.70", T0)  # zone 4: directional bets prohibited
    assert bot.on_signal(news(T0, probability="0.9")) == []
    assert bot.ignored == {"zone": 1}


def enter(bot: NewsScalping) -> OrderIntent:
    books(bot, "0.29", "0.30", T0)
    [entry] = bot.on_signal(news(T0))
    bot.on_execution_report(report(entry, "fill", qty="500", px="0.30", ts_ms=T0 + 1))
    return entry


def test_take_profit_exits_passively_first_then_crosses() -> None:
    bot = new_bot()
    enter(bot)
    assert books(bot, "0.31", "0.33", T0 + 5 * S) == []  # mid 0.32 < entry 0.30 + take-profit 0.03
    [passive] = books(bot, "0.32", "0.34", T0 + 6 * S)  # mid 0.33: take profit
    assert legs([passive]) == [("place", "yes1", "SELL", D("0.34"), D("500"), "GTC")] and passive.post_only
    assert books(bot, "0.32", "0.34", T0 + 15 * S) == []  # resting for passive_exit_s (10 s)
    [cancel] = books(bot, "0.32", "0.34", T0 + 16 * S)
    assert cancel.action == "cancel" and cancel.replaces == passive.client_order_id
    [cross] = bot.on_execution_report(report(passive, "cancel", ts_ms=T0 + 16 * S + 1))
    assert legs([cross]) == [("place", "yes1", "SELL", D("0.32"), D("500.00"), "FAK")]


def test_stop_loss_and_max_hold_exit() -> None:
    bot = new_bot()
    enter(bot)
    [stop] = books(bot, "0.27", "0.29", T0 + 5 * S)  # mid 0.28 = entry 0.30 - stop-loss 0.02
    assert (stop.side, stop.price) == ("SELL", D("0.29"))

    bot = new_bot()
    enter(bot)
    assert books(bot, "0.29", "0.31", T0 + 599 * S) == []
    [held_out] = books(bot, "0.29", "0.31", T0 + 601 * S)  # hold_s 600 after the entry's fill
    assert (held_out.side, held_out.price, held_out.size) == ("SELL", D("0.31"), D("500"))


def test_a_snapshot_restores_the_entry_and_its_exit() -> None:
    """The bots flow snapshots bot instances (recovery.freeze) and binds the config again on restore."""
    bot = new_bot()
    enter(bot)
    restored = thaw(freeze(bot))
    restored.bind(bot.config, VENUE)
    assert restored.entries == bot.entries
    [stop] = books(restored, "0.27", "0.29", T0 + 5 * S)  # mid 0.28 = entry 0.30 - stop-loss 0.02
    assert (stop.side, stop.price) == ("SELL", D("0.29"))


def test_a_residue_below_the_market_minimum_is_held_not_offered_again_and_again() -> None:
    """An exit partly filled down to fewer shares than the venue's minimum order (5): no order could
    sell them, so the bot holds them to resolution instead of proposing an order risk must refuse at
    every book."""
    bot = new_bot()
    enter(bot)
    [passive] = books(bot, "0.32", "0.34", T0 + 6 * S)  # take profit
    bot.on_execution_report(report(passive, "partial_fill", qty="496.5", px="0.34", ts_ms=T0 + 7 * S,
                                   leaves="3.5"))  # fmt: skip
    bot.on_execution_report(report(passive, "cancel", ts_ms=T0 + 8 * S, n=2))  # the venue cancels the rest
    assert bot.held("yes1") == D("3.5")
    assert books(bot, "0.32", "0.34", T0 + 9 * S) == []  # take profit still: nothing to offer
    assert books(bot, "0.20", "0.22", T0 + 30 * S) == [] and books(bot, "0.40", "0.42", T0 + 700 * S) == []


def test_its_snapshot_no_longer_grows_with_the_tops_and_an_older_one_restores() -> None:
    """Before signals carried `reference_mid`, every instance kept each token's mid history for
    max_news_age_s, which the bots flow pickled at every epoch close."""
    bot = new_bot()
    books(bot, "0.29", "0.30", T0)
    size = len(freeze(bot))
    for i in range(1, 2000):  # the mid moves every 100 ms
        books(bot, "0.29", "0.31" if i % 2 else "0.30", T0 + i * 100)
    assert len(freeze(bot)) < size + 50  # the same books and clock, other prices: not 2,000 mids
    state = {**bot.__getstate__(), "mids": {"yes1": object()}}  # the attribute of an older snapshot
    older = NewsScalping.__new__(NewsScalping)
    older.__setstate__(state)
    older.bind(bot.config, VENUE)
    assert older.books == bot.books and not hasattr(older, "mids")
