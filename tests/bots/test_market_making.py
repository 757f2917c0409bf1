"""Bot 5 on hand-built books: quotes, skew, no crossing, volatility and stale pulls, requote rules."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
from bot_factories import CONFIG, MM_PARAMS, T0, VENUE, bot_config, legs, market, report, tob

from pets.bots.market_making import MarketMaker
from pets.schemas.control import ControlCommand
from pets.schemas.orders import OrderDenied, OrderIntent


def new_bot(**params: object) -> MarketMaker:
    bot = MarketMaker(bot_config("bot_05", params=msgspec.structs.replace(MM_PARAMS, **params)), VENUE)
    bot.on_market(market())
    return bot


def yes(bot: MarketMaker, bid: str, ask: str, ts: int = T0, **kw: object) -> list[OrderIntent]:
    return bot.on_top_of_book(tob("yes1", "m1", bid, ask, ts_ms=ts, **kw))  # type: ignore[arg-type]


def test_quotes_both_sides_post_only_around_the_microprice() -> None:
    bot = new_bot()
    assert bot.on_top_of_book(tob("no1", "m1", "0.48", "0.52")) == []  # the NO book is not the quoted one
    intents = yes(bot, "0.48", "0.52")
    # microprice 0.50, half spread 0.01: bid YES at 0.49; the ask at 0.51 is a NO bid at 0.49 (no YES held)
    assert legs(intents) == [
        ("place", "yes1", "BUY", D("0.49"), D(50), "GTC"),
        ("place", "no1", "BUY", D("0.49"), D(50), "GTC"),
    ]
    assert all(i.post_only and i.strategy_type == "market_making" for i in intents)


def test_microprice_leans_toward_the_thin_side() -> None:
    bot = new_bot()
    # bid size 300, ask size 100: microprice (0.48 x 100 + 0.52 x 300) / 400 = 0.51
    intents = yes(bot, "0.48", "0.52", bid_size="300", ask_size="100")
    assert [i.price for i in intents] == [D("0.50"), D("0.48")]


def test_inventory_skews_quotes_and_sells_held_yes() -> None:
    bot = new_bot()
    bid, ask = yes(bot, "0.48", "0.52")
    assert bot.on_execution_report(report(bid, "fill", "50", "0.49", ts_ms=T0 + 10)) == []
    out = yes(bot, "0.48", "0.52", ts=T0 + 1010)
    # 50 YES held: fair 0.50 - 50 x 0.0001 = 0.495 -> bid 0.48, ask 0.51 now sells YES; the NO bid goes
    assert legs(out) == [
        ("place", "yes1", "BUY", D("0.48"), D(50), "GTC"),
        ("cancel", "no1", "BUY", D("0.49"), D(50), "GTC"),
        ("place", "yes1", "SELL", D("0.51"), D(50), "GTC"),
    ]
    assert out[1].replaces == ask.client_order_id


def test_quotes_never_cross_the_book() -> None:
    for skew in ("0", "0.001", "0.01"):
        for inventory in ("-400", "0", "400"):
            bot = new_bot(
                inventory_skew_per_share=D(skew), half_spread=D("0.001"), max_inventory_shares=D(10_000)
            )
            bot.inventory = {"yes1": max(D(inventory), D(0)), "no1": max(-D(inventory), D(0))}
            bot.on_top_of_book(tob("no1", "m1", "0.50", "0.51"))
            for i in yes(bot, "0.49", "0.50"):
                if i.asset_id == "yes1" and i.side == "BUY":
                    assert i.price < D("0.50")
                elif i.asset_id == "yes1":
                    assert i.price > D("0.49")
                else:
                    assert i.price < D("0.51")  # the NO book's best ask


def test_high_volatility_pulls_the_quotes() -> None:
    bot = new_bot()
    quotes = yes(bot, "0.49", "0.51")
    assert yes(bot, "0.39", "0.41", ts=T0 + 100) == []  # within the requote interval
    out = yes(bot, "0.59", "0.61", ts=T0 + 200)  # mids 0.50, 0.40, 0.60: stdev 0.082 > 0.05
    assert [(i.action, i.replaces) for i in out] == [("cancel", q.client_order_id) for q in quotes]


def test_stale_book_pulls_the_quotes() -> None:
    bot = new_bot()
    quotes = yes(bot, "0.49", "0.51")
    out = yes(bot, "0.49", "0.51", ts=T0 + 1, stale=True)
    assert [(i.action, i.replaces) for i in out] == [("cancel", q.client_order_id) for q in quotes]


def test_requotes_only_on_a_move_of_a_tick() -> None:
    bot = new_bot()
    yes(bot, "0.49", "0.51")
    # microprice (0.49 x 100 + 0.51 x 120) / 220 = 0.5009: under one tick from 0.50
    assert yes(bot, "0.49", "0.51", ts=T0 + 5000, bid_size="120") == []


def test_requotes_a_move_at_most_once_per_interval() -> None:
    bot = new_bot()
    bid, ask = yes(bot, "0.49", "0.51")
    assert yes(bot, "0.51", "0.53", ts=T0 + 500) == []  # 2 ticks, but requoted 0.5 s ago: wait
    out = bot.on_top_of_book(tob("no1", "m1", "0.47", "0.49", ts_ms=T0 + 1000))  # any event passing the timer
    assert [(i.action, i.asset_id, i.price, i.replaces) for i in out] == [
        ("replace", "yes1", D("0.51"), bid.client_order_id),
        ("replace", "no1", D("0.47"), ask.client_order_id),
    ]


def test_inventory_limit_stops_the_growing_side() -> None:
    bot = new_bot(max_inventory_shares=D(60))
    bid, _ = yes(bot, "0.49", "0.51")
    bot.on_execution_report(report(bid, "fill", "50", "0.49"))
    out = yes(bot, "0.49", "0.51", ts=T0 + 1000)
    # 50 held + 50 more would pass 60: no new YES bid; the ask side now sells the YES held
    assert [(i.action, i.asset_id, i.side) for i in out if i.action != "cancel"] == [
        ("place", "yes1", "SELL")
    ]


def test_a_refused_replace_keeps_the_old_quote() -> None:
    bot = new_bot()
    bid, _ = yes(bot, "0.49", "0.51")
    bot.on_execution_report(report(bid, "ack"))
    replace = yes(bot, "0.51", "0.53", ts=T0 + 1000)[0]
    assert replace.replaces == bid.client_order_id
    bot.on_order_denied(OrderDenied(intent=replace, rule="rate_limit", reason="x", denied_ns=0))
    assert bot.quotes["m1"].bid_id == bid.client_order_id and not bot.orders[bid.client_order_id].cancelling


def test_stop_pulls_quotes_and_places_nothing() -> None:
    bot = new_bot()
    quotes = yes(bot, "0.49", "0.51")
    bot.on_control(ControlCommand(command_id="1", command="stop", bot_id="bot_05", ts_ns=0))
    out = yes(bot, "0.55", "0.57", ts=T0 + 2000)
    assert [(i.action, i.replaces) for i in out] == [("cancel", q.client_order_id) for q in quotes]


def test_no_quote_that_would_cross_at_the_edge_of_the_price_range() -> None:
    bot = new_bot(half_spread=D("0.001"))
    bot.on_top_of_book(tob("no1", "m1", None, "0.005", tick="0.005"))
    out = yes(bot, "0.99", "0.995", tick="0.005")
    # the ask side would be a NO bid below the NO best ask 0.005: there is no such price on the grid
    assert [(i.asset_id, i.side, i.price) for i in out] == [("yes1", "BUY", D("0.990"))]


def test_volatility_window_in_micro_units_matches_the_exact_stdev() -> None:
    from fractions import Fraction

    from pets.bots.market_making import MarketQuotes, volatility_limit
    from pets.venue.units import MID_SCALE

    mids = ["0.5", "0.5125", "0.47", "0.49995", "0.52", "0.5"]
    for limit in (D("0.01"), D("0.015"), D("0.0175"), D("0.02"), D("0.05")):
        quotes = MarketQuotes("yes1", "no1")
        for i, mid in enumerate(mids):
            quotes.add_mid(T0 + i * 10_000, int(D(mid) * MID_SCALE), window_ms=25_000)
            window = [Fraction(m) for m in mids[max(0, i - 2) : i + 1]]  # the last 25 s: 3 mids
            mean = sum(window) / len(window)
            variance = sum((m - mean) ** 2 for m in window) / len(window)
            assert quotes.window_size == len(window)
            assert quotes.too_volatile(volatility_limit(limit)) == (variance > Fraction(limit) ** 2)


def test_volatility_window_keeps_exact_sums_across_compactions_and_pickling() -> None:
    import pickle

    from pets.bots.market_making import COMPACT_AFTER, MarketQuotes

    quotes = MarketQuotes("yes1", "no1")
    mids = [500_000 + (i * 7919) % 20_000 for i in range(3 * COMPACT_AFTER)]
    for i, mid in enumerate(mids):
        quotes.add_mid(T0 + i, mid, window_ms=100)
        if i % 997 == 0:
            quotes = pickle.loads(pickle.dumps(quotes))  # a recovery snapshot and resume
    window = mids[-100:]  # entries newer than the last ts - 100 ms
    assert quotes.window_size == len(window)
    assert (quotes.mid_sum, quotes.mid_sq_sum) == (sum(window), sum(m * m for m in window))
    assert len(quotes.mid_ts) < 2 * COMPACT_AFTER + len(window)  # the expired head was dropped


def test_a_volatility_window_snapshots_in_8_bytes_an_entry() -> None:
    """The flows pickle it at every epoch close and commit it to the recovery store (Bot 8's 300 s
    window at the bench's rate is ~18,000 entries a market): an int32 time offset and an int32 mid
    (was an int64 time, 12 bytes)."""
    from pets.bots.market_making import MarketQuotes
    from pets.flows.recovery import freeze
    from pets.venue.units import MID_SCALE

    quotes = MarketQuotes("yes1", "no1")
    for i in range(10_000):
        quotes.add_mid(T0 + i, MID_SCALE // 2 + i % 7, window_ms=60_000)
    assert quotes.window_size == 10_000
    assert len(freeze(quotes)) < 10_000 * 8 + 1_000


def test_volatility_window_times_stay_exact_across_rebases_and_clock_jumps() -> None:
    """The int32 time offsets are re-based when a time leaves their range from the base (the clock
    jumped 24.8 days or more, either way): the window holds what a plain list of (ms, mid) would,
    expiring from the head on each add, snapshot or not."""
    import pickle

    from pets.bots.market_making import MarketQuotes
    from pets.flows.recovery import freeze, thaw

    day = 86_400_000
    jumps = {300: 30 * day, 700: -40 * day, 1_100: 100 * day, 1_500: -1 * day, 2_600: 25 * day}
    quotes = MarketQuotes("yes1", "no1")
    reference: list[tuple[int, int]] = []
    ts = T0
    for i in range(3_000):
        ts += jumps.get(i, 7 + i % 13)
        mid = 400_000 + (i * 7919) % 200_000
        quotes.add_mid(ts, mid, window_ms=1_000)
        reference.append((ts, mid))
        while reference[0][0] <= ts - 1_000:
            reference.pop(0)
        if i % 251 == 0:
            quotes = thaw(freeze(quotes)) if i % 2 else pickle.loads(pickle.dumps(quotes))
        mids = [m for _, m in reference]
        assert quotes.window_size == len(mids), i
        assert (quotes.mid_sum, quotes.mid_sq_sum) == (sum(mids), sum(m * m for m in mids)), i
    assert quotes.mid_ts.typecode == "i"  # back to offsets once the old times expired


def test_a_volatility_window_from_an_older_snapshot_resumes() -> None:
    """A snapshot from before the int32 offsets: absolute int64 times and no `ts_base`."""
    from array import array

    from pets.bots.market_making import COMPACT_AFTER, MarketQuotes
    from pets.native import rebuild

    times = [T0 + i for i in range(5)]
    old = rebuild(MarketQuotes, {
        "yes": "yes1", "no": "no1", "bid_id": None, "ask_id": None, "fair": None, "quoted_ms": 0,
        "mid_ts": array("q", times), "mid_values": array("i", [500_000] * 5), "first": 0,
        "mid_sum": 5 * 500_000, "mid_sq_sum": 5 * 500_000**2,
    })  # fmt: skip
    old.add_mid(T0 + 5, 600_000, window_ms=3)  # drops T0 .. T0 + 2
    assert (old.window_size, old.mid_sum) == (3, 2 * 500_000 + 600_000)
    for i in range(6, 3 * COMPACT_AFTER):
        old.add_mid(T0 + i, 600_000, window_ms=3)
    assert (old.window_size, old.mid_sum, old.mid_ts.typecode) == (3, 3 * 600_000, "i")


def test_buy_quotes_fit_the_position_limit_at_cost_like_risk_counts_it() -> None:
    bot = MarketMaker(
        bot_config(
            "bot_05",
            max_position_usdc=D(60),
            min_position_usdc=D(1),
            params=msgspec.structs.replace(MM_PARAMS, max_volatility=D(1)),
        ),
        VENUE,
    )
    bot.on_market(market())
    bid, no_bid = yes(bot, "0.89", "0.91")
    assert (bid.price, bid.size, no_bid.asset_id, no_bid.price) == (D("0.89"), D(50), "no1", D("0.09"))
    bot.on_execution_report(report(bid, "fill", "50", "0.89", ts_ms=T0 + 10))
    out = yes(bot, "0.49", "0.51", ts=T0 + 1010)
    # 50 YES held cost 44.50 (worth 24.75 at the new fair 0.495) and the NO bid rests (4.50): a new YES
    # bid at 0.48 has 60 - 44.50 - 4.50 = 11.00 of room: 11 / 0.48 = 22.91 shares (the fair value would
    # have left room for all 50, which risk would have refused or cut)
    new_bid = next(i for i in out if i.asset_id == "yes1" and i.side == "BUY")
    assert (new_bid.price, new_bid.size) == (D("0.48"), D("22.91"))


def test_no_new_buy_after_an_allocation_refusal_until_own_exposure_falls() -> None:
    bot = new_bot()
    bid, no_bid = yes(bot, "0.48", "0.52")
    bot.on_execution_report(report(no_bid, "ack"))
    bot.on_order_denied(OrderDenied(intent=bid, rule="allocation", reason="full", denied_ns=0))
    # 31 s later (after the market's back-off) the book moved: the bot's exposure (the resting NO bid)
    # has not fallen since the refusal, so it proposes no buy and pulls the NO bid it would have moved
    out = yes(bot, "0.50", "0.54", ts=T0 + 31_000)
    assert [(i.action, i.replaces) for i in out] == [("cancel", no_bid.client_order_id)]
    bot.on_execution_report(report(no_bid, "cancel", ts_ms=T0 + 31_010))
    # the cancel freed room: quoting resumes (risk decides whether it fits)
    out = yes(bot, "0.52", "0.56", ts=T0 + 32_100)
    assert [(i.action, i.asset_id, i.side) for i in out] == [
        ("place", "yes1", "BUY"),
        ("place", "no1", "BUY"),
    ]


def test_no_bid_below_the_first_tick() -> None:
    # 1,000 shares: a bid at 0.01 would be a 10 USDC position, above bot_05's minimum of 5
    bot = new_bot(half_spread=D("0.015"), quote_size_shares=D(1000), max_inventory_shares=D(10_000))
    # microprice 0.02: the bid would be 0.005, off the 0.01 grid below its first tick -> no bid (never
    # one at 0.01, a worse price than the quote wants)
    intents = yes(bot, "0.01", "0.03")
    assert [i for i in intents if i.asset_id == "yes1" and i.side == "BUY"] == []
    # a bid the grid can hold is placed: microprice 0.04 - 0.015 = 0.025 -> 0.02
    fresh = new_bot(half_spread=D("0.015"), quote_size_shares=D(1000), max_inventory_shares=D(10_000))
    assert ("place", "yes1", "BUY", D("0.02"), D(1000), "GTC") in legs(yes(fresh, "0.03", "0.05"))


def test_with_the_zone_rules_no_bid_goes_where_risk_would_refuse_it() -> None:
    """zone_framework.yaml closes zone 5 (0.80 and up) to market making: a maker given the zone
    rules (as build_bots does) quotes only the NO side of a 0.81 market; without them both sides."""
    plain = new_bot()
    # microprice 0.81, half spread 0.01: YES bid 0.80 (zone 5), NO bid 1 - 0.82 = 0.18 (zone 1)
    both = [("yes1", D("0.80")), ("no1", D("0.18"))]
    assert [(leg[1], leg[3]) for leg in legs(yes(plain, "0.79", "0.83"))] == both
    zoned = new_bot()
    zoned.use_zones(CONFIG.zones)
    assert [(leg[1], leg[3]) for leg in legs(yes(zoned, "0.79", "0.83"))] == [("no1", D("0.18"))]
    assert zoned.zone_allows(D("0.79")) and not zoned.zone_allows(D("0.80"))


def test_zone_allows_takes_a_directional_probability_for_zone_3() -> None:
    from signal_bots import SignalTaker

    bot = SignalTaker(bot_config("bot_04"), VENUE)  # zone strategy news_scalping
    bot.use_zones(CONFIG.zones)
    assert not bot.zone_allows(D("0.50"), "directional")  # zone 3 needs a probability
    assert not bot.zone_allows(D("0.50"), "directional", D("0.52"))
    assert bot.zone_allows(D("0.50"), "directional", D("0.53"))
    assert bot.zone_allows(D("0.30"), "directional")  # zone 2 lists news scalping
    assert not bot.zone_allows(D("0.70"), "directional", D("0.99"))  # zone 4: prohibited


def test_a_volatility_window_snapshots_its_live_entries_only() -> None:
    """The arrays keep the expired head until it outgrows the live part; a snapshot leaves it out,
    and the window it resumes is the same (entries, sums, what expires next)."""
    from pets.bots.market_making import COMPACT_AFTER, MarketQuotes
    from pets.flows.recovery import freeze, thaw

    quotes = MarketQuotes("yes1", "no1")
    for i in range(4 * COMPACT_AFTER):  # the window: the last 3,000 ms, one entry a ms
        quotes.add_mid(T0 + i, 500_000 + i % 11, window_ms=3_000)
    expired = quotes.first
    assert expired > 500  # what the arrays still hold of the expired head
    restored = thaw(freeze(quotes))
    assert len(freeze(quotes)) < 3_000 * 8 + 1_000  # the live entries, not the expired ones too
    assert (restored.first, len(restored.mid_ts)) == (0, len(quotes.mid_ts) - expired)
    for i in range(4 * COMPACT_AFTER, 4 * COMPACT_AFTER + 50):
        for window in (quotes, restored):
            window.add_mid(T0 + i, 600_000, window_ms=3_000)
        assert (restored.window_size, restored.mid_sum, restored.mid_sq_sum) == (
            quotes.window_size, quotes.mid_sum, quotes.mid_sq_sum,
        )  # fmt: skip
