"""Bot 7, AI contrarian + attention: a news burst (the news flow's features.news) and a sharp move, a
forecast shrunk toward the price that disagrees by more than the edge -> the contrarian side, sized by
exact Kelly; cool-down."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
from bot_factories import CONFIG, T0, VENUE, bot_config, legs, market, tob

from pets.bots.ai_contrarian import AiContrarian, attention_ratio
from pets.flows.recovery import freeze, thaw
from pets.schemas.orders import OrderIntent
from pets.schemas.signals import NewsAttention
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


def attention(at_ms: int, news_5m: int = 1, news_24h: int = 1, momentum: str | None = "0") -> NewsAttention:
    ratio = news_5m / (news_24h / 288)
    return NewsAttention(
        market="m1", ts_ns=at_ms * MS, news_5m=news_5m, news_1h=news_5m, news_24h=news_24h,
        news_5m_vs_24h=ratio, news_1h_vs_24h=ratio / 12,
        momentum_5m=None if momentum is None else D(momentum), realized_vol_5m=None,
        volume_5m=D(0), volume_1h=D(0), volume_5m_vs_1h=0.0,
    )  # fmt: skip


def news(bot: AiContrarian, at_ms: int, q_yes: str, **features: object) -> list[OrderIntent]:
    """An item as the news flow publishes it: its market's attention features, then its forecast."""
    return bot.on_news_attention(attention(at_ms, **features)) + bot.on_signal(forecast(at_ms, q_yes))  # type: ignore[arg-type]


def test_a_burst_and_a_sharp_rise_the_forecast_disagrees_with_buys_the_other_side_by_kelly() -> None:
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)  # YES mid 0.75
    assert news(bot, T0 + 120 * S, "0.55") == []  # the news arrives before the move
    [intent] = books(bot, "0.84", "0.86", T0 + 150 * S)  # YES mid 0.85: +0.10 in 150 s
    # q' = 0.5 x 0.55 + 0.5 x 0.85 = 0.70 < 0.85 - 0.04 -> NO wins with 0.30; NO ask 0.16 (zone 1).
    # Kelly without fee: f* = (0.30 - 0.16) / (1 - 0.16) = 1/6; 0.25 x 1/6 x 600 / 0.16 = 156.25 shares
    assert legs([intent]) == [("place", "no1", "BUY", D("0.16"), D("156.25"), "FAK")]
    assert intent.probability == D("0.30")
    assert intent.cause is not None and intent.cause.model_version == "llm:test-model"
    assert "q' 0.7" in intent.cause.note


def test_a_move_before_the_item_counts_from_the_features_momentum() -> None:
    """The YES mid was 0.75 five minutes before the item (momentum +0.10 at 0.85): the move is there
    when the features come, before any book of the bot's own shows it."""
    bot = new_bot()
    books(bot, "0.84", "0.86", T0)
    [intent] = news(bot, T0 + 120 * S, "0.55", momentum="0.10")
    assert legs([intent]) == [("place", "no1", "BUY", D("0.16"), D("156.25"), "FAK")]


def test_no_trade_without_a_spike_a_move_or_a_disagreement() -> None:
    # the forecast agrees with the move
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)
    news(bot, T0 + 120 * S, "0.86")
    assert books(bot, "0.84", "0.86", T0 + 150 * S) == []
    # no move
    bot = new_bot()
    books(bot, "0.84", "0.86", T0)
    news(bot, T0 + 120 * S, "0.55")
    assert books(bot, "0.84", "0.86", T0 + 150 * S) == []
    # a forecast from the model source alone is no news: no attention
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)
    bot.on_signal(forecast(T0 + 120 * S, "0.55", source="model"))
    assert books(bot, "0.84", "0.86", T0 + 150 * S) == []
    # a news signal without its attention features: the bot counts no attention of its own
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)
    bot.on_signal(forecast(T0 + 120 * S, "0.55"))
    assert books(bot, "0.84", "0.86", T0 + 150 * S) == []
    # a busy market: one item in 5 min against 1,435 a day (5 per 5 min) is no spike
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)
    news(bot, T0 + 120 * S, "0.55", news_24h=1435)
    assert books(bot, "0.84", "0.86", T0 + 150 * S) == []
    # features older than attention_window_s (300 s) are no spike now
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)
    news(bot, T0 + 120 * S, "0.55")
    assert books(bot, "0.84", "0.86", T0 + 421 * S) == []


def test_shrinkage_toward_the_price_can_remove_the_edge() -> None:
    bot = new_bot()
    bot.params = msgspec.structs.replace(bot.params, shrink_weight=D("0.1"))
    books(bot, "0.74", "0.76", T0)
    news(bot, T0 + 120 * S, "0.55")
    # q' = 0.1 x 0.55 + 0.9 x 0.85 = 0.82 > 0.85 - 0.04: no bet
    assert books(bot, "0.84", "0.86", T0 + 150 * S) == []


def test_cool_down_per_market() -> None:
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)
    news(bot, T0 + 120 * S, "0.55")
    assert len(books(bot, "0.84", "0.86", T0 + 150 * S)) == 1
    bot.orders.clear()  # the FAK was killed: nothing held, nothing open
    bot.on_news_attention(attention(T0 + 200 * S, news_5m=2, news_24h=2))
    bot.on_signal(forecast(T0 + 200 * S, "0.55", n=2))
    assert books(bot, "0.85", "0.87", T0 + 300 * S) == []  # within cooldown_s (600 s)


def test_attention_ratio_against_the_baseline() -> None:
    # one item an hour for the last day and 3 in 5 min: 26 a day = 26 / 288 = 0.0903 per 5 min < floor 0.25
    assert attention_ratio(attention(T0, news_5m=3, news_24h=26), D("0.25")) == D(3) / D("0.25")
    # one a minute: 1,440 a day = 5 per 5 min
    assert attention_ratio(attention(T0, news_5m=1, news_24h=1440), D("0.25")) == D("0.2")


def test_a_snapshot_restores_attention_forecasts_and_cool_down() -> None:
    """The bots flow snapshots bot instances (recovery.freeze) and binds the config again on restore."""
    bot = new_bot()
    books(bot, "0.74", "0.76", T0)
    news(bot, T0 + 120 * S, "0.55")
    restored = thaw(freeze(bot))
    restored.bind(bot.config, VENUE)
    kept = (restored.attention, restored.before, restored.forecasts)
    assert kept == (bot.attention, bot.before, bot.forecasts)
    assert len(books(restored, "0.84", "0.86", T0 + 150 * S)) == 1  # the same trade as without a restore
    restored.orders.clear()
    again = thaw(freeze(restored))
    again.bind(bot.config, VENUE)
    again.on_news_attention(attention(T0 + 200 * S, news_5m=2, news_24h=2))
    again.on_signal(forecast(T0 + 200 * S, "0.55", n=2))
    assert books(again, "0.85", "0.87", T0 + 300 * S) == []  # still cooling down
