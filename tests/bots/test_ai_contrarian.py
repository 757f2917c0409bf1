"""Bot 7, AI contrarian + attention: a news burst and a sharp move, a forecast shrunk toward the price
that disagrees by more than the edge -> the contrarian side, sized by exact Kelly; cool-down."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
from bot_factories import CONFIG, T0, VENUE, bot_config, legs, market, tob

from pets.bots.ai_contrarian import AiContrarian, attention_ratio
from pets.flows.recovery import freeze, thaw
from pets.schemas.orders import OrderIntent
from signal_bots import signal
from venue_factories import MS

S = 1000


def new_bot() -> AiContrarian:
    bot = AiContrarian(bot_config("bot_07"), VENUE)
    bot.use_zones(CONFIG.zones)
    bot.on_market(market("m1", fee_rate=D(0)))  # no fee: Kelly's cost per share is the ask
    return bot


def books(bot: AiContrarian, bid: str, ask: str, ts: int) -> list[OrderIntent]:
    """The NO book mirrored first, then the YES book (the bot evaluates on YES's mid)."""
    no_bid, no_ask = str(1 - D(ask)), str(1 - D(bid))
    out = bot.on_top_of_book(tob("no1", "m1", no_bid, no_ask, ts_ms=ts, bid_size="1000", ask_size="1000"))
    return out + bot.on_top_of_book(tob("yes1", "m1", bid, ask, ts_ms=ts, bid_size="1000", ask_size="1000"))


def forecast(at_ms: int, q_yes: str, n: int = 1, source: str = "news") -> object:
    return signal(n, source=source, ts_ns=at_ms * MS, expires_ns=(at_ms + 600 * S) * MS, probability=D(q_yes),
                  model_version="llm:test-model")  # fmt: skip


def test_a_burst_and_a_sharp_rise_the_forecast_disagrees_with_buys_the_other_side_by_kelly() -> None:
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)  # YES mid 0.75
    assert bot.on_signal(forecast(T0 + 120 * S, "0.55")) == []  # the news arrives before the move
    [intent] = books(bot, "0.84", "0.86", T0 + 150 * S)  # YES mid 0.85: +0.10 in 150 s
    # q' = 0.5 x 0.55 + 0.5 x 0.85 = 0.70 < 0.85 - 0.04 -> NO wins with 0.30; NO ask 0.16 (zone 1).
    # Kelly without fee: f* = (0.30 - 0.16) / (1 - 0.16) = 1/6; 0.25 x 1/6 x 600 / 0.16 = 156.25 shares
    assert legs([intent]) == [("place", "no1", "BUY", D("0.16"), D("156.25"), "FAK")]
    assert intent.probability == D("0.30")
    assert intent.cause is not None and intent.cause.model_version == "llm:test-model"
    assert "q' 0.7" in intent.cause.note


def test_no_trade_without_a_spike_a_move_or_a_disagreement() -> None:
    # the forecast agrees with the move
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)
    bot.on_signal(forecast(T0 + 120 * S, "0.86"))
    assert books(bot, "0.84", "0.86", T0 + 150 * S) == []
    # no move
    bot = new_bot()
    books(bot, "0.84", "0.86", T0)
    bot.on_signal(forecast(T0 + 120 * S, "0.55"))
    assert books(bot, "0.84", "0.86", T0 + 150 * S) == []
    # a forecast from the model source alone is no news: no attention
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)
    bot.on_signal(forecast(T0 + 120 * S, "0.55", source="model"))
    assert books(bot, "0.84", "0.86", T0 + 150 * S) == []


def test_shrinkage_toward_the_price_can_remove_the_edge() -> None:
    bot = new_bot()
    bot.params = msgspec.structs.replace(bot.params, shrink_weight=D("0.1"))
    books(bot, "0.74", "0.76", T0)
    bot.on_signal(forecast(T0 + 120 * S, "0.55"))
    # q' = 0.1 x 0.55 + 0.9 x 0.85 = 0.82 > 0.85 - 0.04: no bet
    assert books(bot, "0.84", "0.86", T0 + 150 * S) == []


def test_cool_down_per_market() -> None:
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)
    bot.on_signal(forecast(T0 + 120 * S, "0.55"))
    assert len(books(bot, "0.84", "0.86", T0 + 150 * S)) == 1
    bot.orders.clear()  # the FAK was killed: nothing held, nothing open
    bot.on_signal(forecast(T0 + 200 * S, "0.55", n=2))
    assert books(bot, "0.85", "0.87", T0 + 300 * S) == []  # within cooldown_s (600 s)


def test_attention_ratio_against_the_baseline() -> None:
    hour = 3600 * S
    window, day = 300 * S, 24 * hour
    now = 2 * day
    quiet = [now - k * hour for k in range(1, 24)]  # one item an hour for the last day
    recent, ratio = attention_ratio(
        [*quiet, now - 10 * S, now - 20 * S, now - 30 * S], now, window, day, D("0.25")
    )
    # 23 items before the window over 86,100 s -> 23 x 300 / 86,100 = 0.0801 per window < floor 0.25
    assert recent == 3 and ratio == D(3) / D("0.25")
    busy = [now - k * 60 * S for k in range(6, 1440)]  # one a minute: 1434 items outside the window
    recent, ratio = attention_ratio([*busy, now - 10 * S], now, window, day, D("0.25"))
    assert recent == 1 and ratio == D(1) / (D(1434) * 300 / 86_100)


def test_a_snapshot_restores_attention_forecasts_and_cool_down() -> None:
    """The bots flow snapshots bot instances (recovery.freeze) and binds the config again on restore."""
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)
    bot.on_signal(forecast(T0 + 120 * S, "0.55"))
    restored = thaw(freeze(bot))
    restored.bind(bot.config, VENUE)
    assert (restored.news_ms, restored.forecasts, restored.mids) == (bot.news_ms, bot.forecasts, bot.mids)
    assert len(books(restored, "0.84", "0.86", T0 + 150 * S)) == 1  # the same trade as without a restore
    restored.orders.clear()
    again = thaw(freeze(restored))
    again.bind(bot.config, VENUE)
    again.on_signal(forecast(T0 + 200 * S, "0.55", n=2))
    assert books(again, "0.85", "0.87", T0 + 300 * S) == []  # still cooling down
