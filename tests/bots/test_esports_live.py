"""Bot 2: enters on an esports signal's probability over ask + fee with exact Kelly while the feed is
fresh, exits when the gap closes or the feed stalls, does not retry what the venue cancelled."""

from __future__ import annotations

import pickle
from decimal import Decimal as D

import msgspec
from bot_factories import CONFIG, T0, VENUE, report, tob
from value_factories import config_of, kelly_shares, value_market

from pets.bots.esports_live import EsportsLiveEvents
from pets.bots.registry import build_bots
from pets.schemas.config import EsportsLiveParams
from pets.schemas.signals import Signal

MS = 1_000_000


def params(**changes: object) -> EsportsLiveParams:
    fields: dict[str, object] = {
        "min_edge": D("0.02"), "exit_edge": D("0.005"), "max_feed_lag_ms": 45_000, "bankroll_usdc": D(1000),
        "kelly_fraction": D("0.25"), "min_price": D("0.20"), "max_price": D("0.60"), "venue_pause_ms": 5_000,
    }  # fmt: skip
    return EsportsLiveParams(**{**fields, **changes})  # type: ignore[arg-type]


def new_bot(**changes: object) -> EsportsLiveEvents:
    bot = EsportsLiveEvents(config_of("esports_live_events", params(**changes)), VENUE)
    bot.on_market(value_market("m1", category="esports"))
    bot.on_top_of_book(tob("yes1", "m1", "0.30", "0.32", bid_size="1000", ask_size="1000"))
    bot.on_top_of_book(tob("no1", "m1", "0.68", "0.70", bid_size="1000", ask_size="1000"))
    return bot


def signal(
    p: str | None, n: int = 1, lag: int | None = 2_000, ts_ms: int = T0, asset: str = "yes1"
) -> Signal:
    return Signal(
        signal_id=f"s{n}", source="esports", market="m1", asset_id=asset if p is not None else None,
        side="BUY" if p is not None else None, probability=D(p) if p is not None else None,
        confidence=D("0.8"), rationale=f"baron event {n}" if p is not None else "feed stalled",
        ts_ns=ts_ms * MS, model_version="esports_win@v0001", feed_lag_ms=lag,
    )  # fmt: skip


def test_a_fresh_signal_above_ask_plus_fee_buys_by_exact_kelly_with_its_cause() -> None:
    bot = new_bot()
    [buy] = bot.on_signal(signal("0.45"))
    # c = 0.32 + 0.03 x 0.32 x 0.68 = 0.326528; f* = (0.45 - c) / (1 - c); quarter Kelly of 1000 / c
    assert (buy.side, buy.asset_id, buy.price, buy.order_type) == ("BUY", "yes1", D("0.32"), "FAK")
    assert buy.size == kelly_shares(D("0.45"), D("0.32"), D(1000)) == D("140.36")
    assert buy.cause is not None and buy.cause.source == "esports" and buy.cause.signal_id == "s1"
    assert buy.cause.model_version == "esports_win@v0001" and "feed lag 2000 ms" in buy.cause.note


def test_the_other_token_gets_one_minus_p() -> None:
    bot = new_bot()
    # p(yes) = 0.20 -> p(no) = 0.80, but no's ask 0.70 is in zone 4: no directional buy there
    assert bot.on_signal(signal("0.20")) == []
    assert bot.views["no1"].probability == D("0.80")


def test_a_lagging_feed_or_a_small_edge_does_not_enter() -> None:
    assert new_bot().on_signal(signal("0.45", lag=45_001)) == []
    assert new_bot().on_signal(signal("0.45", lag=45_000)) != []
    # edge 0.346 - 0.326528 = 0.0195 <= min_edge 0.02
    assert new_bot().on_signal(signal("0.346")) == []


def held_bot() -> tuple[EsportsLiveEvents, D]:
    bot = new_bot()
    [buy] = bot.on_signal(signal("0.45"))
    bot.on_execution_report(report(buy, "fill", str(buy.size), "0.32"))
    return bot, buy.size


def test_exit_when_the_book_reprices_to_the_model() -> None:
    bot, size = held_bot()
    # bid 0.43 net of fee = 0.43 - 0.03 x 0.43 x 0.57 = 0.422647: gap 0.027 > exit_edge, hold
    assert bot.on_top_of_book(tob("yes1", "m1", "0.43", "0.44", ts_ms=T0 + 1, bid_size="1000")) == []
    # bid 0.45 net of fee = 0.442575: gap 0.0074 > 0.005, hold; bid 0.46 net 0.452548 > p: sell
    assert bot.on_top_of_book(tob("yes1", "m1", "0.45", "0.46", ts_ms=T0 + 2, bid_size="1000")) == []
    [sell] = bot.on_top_of_book(tob("yes1", "m1", "0.46", "0.47", ts_ms=T0 + 3, bid_size="1000"))
    assert (sell.side, sell.price, sell.size, sell.order_type) == ("SELL", D("0.46"), size, "FAK")


def test_a_stalled_feed_sells_and_stops_entries_until_a_new_probability() -> None:
    bot, size = held_bot()
    [sell] = bot.on_signal(signal(None, n=2))
    assert (sell.side, sell.price, sell.size) == ("SELL", D("0.30"), size)
    assert "stop: feed stalled" in (sell.cause.note if sell.cause else "")
    bot.on_execution_report(report(sell, "fill", str(size), "0.30"))
    assert bot.on_top_of_book(tob("yes1", "m1", "0.30", "0.32", ts_ms=T0 + 5, bid_size="1000")) == []
    assert [i.side for i in bot.on_signal(signal("0.45", n=3))] == ["BUY"]


def test_an_order_the_venue_cancelled_is_not_retried_until_the_pause_is_over() -> None:
    bot = new_bot()
    [buy] = bot.on_signal(signal("0.45"))
    bot.on_execution_report(report(buy, "cancel", ts_ms=T0 + 10))
    assert bot.venue_paused_ms == {"m1": T0 + 10}
    # the next event's signal 4.99 s after the venue's cancel: still paused
    assert bot.on_signal(signal("0.46", n=2, ts_ms=T0 + 10 + 4_990)) == []
    [again] = bot.on_signal(signal("0.47", n=3, ts_ms=T0 + 10 + 5_000))
    assert again.side == "BUY"


def test_a_fak_remainder_is_not_a_venue_pause() -> None:
    bot = new_bot()
    [buy] = bot.on_signal(signal("0.45"))
    bot.on_execution_report(report(buy, "partial_fill", "50", "0.32", leaves="90.36"))
    gone = msgspec.structs.replace(report(buy, "cancel", "0", n=2), reason="FAK remainder 90.36 cancelled")
    bot.on_execution_report(gone)
    assert bot.venue_paused_ms == {}


def test_the_shipped_bot_runs_the_esports_class() -> None:
    [bot] = [b for b in build_bots(CONFIG) if b.bot_id == "bot_02"]
    assert isinstance(bot, EsportsLiveEvents) and bot.signal_sources == ("esports",)


def test_a_snapshot_restores_the_views_and_pauses() -> None:
    """The bots flow snapshots bot instances (pickle) and binds the config again on restore."""
    bot = new_bot()
    [buy] = bot.on_signal(signal("0.45"))
    bot.on_execution_report(report(buy, "cancel", ts_ms=T0 + 10))
    restored = pickle.loads(pickle.dumps(bot))
    restored.bind(bot.config, VENUE)
    assert restored.views == bot.views and restored.venue_paused_ms == {"m1": T0 + 10}
    assert restored.on_signal(signal("0.47", n=2, ts_ms=T0 + 10 + 4_000)) == []
    assert [i.side for i in restored.on_signal(signal("0.47", n=3, ts_ms=T0 + 10 + 5_000))] == ["BUY"]
