"""The news flow: real feed items (guardian.rss through the local feed server) polled to news.item,
matched to the markets of md.markets, forecast (the real `openai` client against the local LLM server in
process; the baseline through the real broker), published as signal.news with the attention features on
features.news; and those signals drive Bot 4 to an order."""

from __future__ import annotations

import dataclasses
import pickle
import time
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import httpx
import msgspec
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

from kafka_support import consume_until
from pets.bots.news_scalping import NewsScalping
from pets.flows.news import FeedSource, SignallerState, build_flow
from pets.flows.recovery import recovery_store
from pets.flows.trading_io import Routed
from pets.pipelines.kafka_io import ensure_topics, producer
from pets.pipelines.news.feed_server import serve_feeds
from pets.pipelines.news.feeds import FeedConfig, FeedPoller
from pets.pipelines.news.forecaster import BaselineForecaster, LlmForecaster, LlmSettings
from pets.pipelines.news.llm_server import serve_llm
from pets.schemas.codec import decode, encode
from pets.schemas.config import load_config
from pets.schemas.market_data import LastTradePrice
from pets.schemas.signals import Signal
from pets.settings import Settings, project_root
from venue_factories import MS, T0, market, tob

PREFIX = "unit."
SOTU = market("m_sotu", ("yes_s", "no_s"), category="politics",
              question="Will Trump call for unity in the State of the Union address?")  # fmt: skip
FBI = market("m_fbi", ("yes_f", "no_f"), category="politics",
             question="Will Trump release the FBI memo on surveillance?")  # fmt: skip
OTHER = market("m_btc", ("yes_b", "no_b"), category="crypto", question="Will Bitcoin reach $100k this year?")


def msg(topic: str, message: Any) -> KafkaSourceMessage[bytes, bytes]:
    value = encode(message)
    return KafkaSourceMessage(key=None, value=value, topic=PREFIX + topic, offset=0, partition=0)  # type: ignore[arg-type]


def test_feed_items_become_news_signals_that_bot_4_trades(settings: Settings, shared_data: Path) -> None:
    body = (shared_data / "news" / "guardian.rss").read_bytes()
    with serve_feeds({"/guardian.rss": body}) as feeds, serve_llm() as llm:
        feed = FeedConfig(url=feeds.url + "/guardian.rss", source="guardian")
        items = FeedPoller([feed], httpx.Client(timeout=5)).poll_due().items  # what news.item will carry
        books = [tob(m.token_ids[0], m.condition_id, "0.29", "0.31", ts_ms=items[0].received_ns // MS)
                 for m in (SOTU, FBI, OTHER)]  # fmt: skip
        print_ms = items[0].received_ns // MS - 1000
        prints = [LastTradePrice(asset_id=a, market="m_sotu", price="0.30", size=n, side="BUY",
                                 timestamp=print_ms)
                  for a, n in (("yes_s", "12"), ("no_s", "3"))]  # fmt: skip
        source = TestingSource([
            *[msg("md.markets", m) for m in (SOTU, FBI, OTHER)],
            *[msg("md.tob", b) for b in books],
            *[msg("md.book", p) for p in prints],
            *[msg("news.item", i) for i in items],
        ])  # fmt: skip
        out: list[Routed] = []
        llm_settings = LlmSettings(base_url=llm.base_url, model="test-model", api_key="k", max_retries=0)
        flow = build_flow(
            dataclasses.replace(settings, topic_prefix=PREFIX), source, TestingSink(out),
            feeds=FeedSource([feed], max_polls=1), make_forecaster=lambda: LlmForecaster(llm_settings),
            threshold=1.0,
        )  # fmt: skip
        run_main(flow)
    polled = [r for r in out if r.topic == "news.item"]
    assert len(polled) == 55 and {r.key for r in polled} == {"guardian"}
    signals: list[Signal] = [r.message for r in out if r.topic == "signal.news"]
    by_market = {s.market: s for s in signals}
    assert set(by_market) <= {"m_sotu", "m_fbi"} and "m_sotu" in by_market
    sotu = by_market["m_sotu"]
    # the local model: q = (0.30 + 0.5) / 2 = 0.40 above the mid 0.30 -> buy YES with p 0.40
    assert (sotu.asset_id, sotu.side, sotu.probability) == ("yes_s", "BUY", D("0.4"))
    assert sotu.model_version == "llm:test-model" and 0 < sotu.confidence <= 1
    assert "State of the Union" in sotu.rationale
    features = [r.message for r in out if r.topic == "features.news"]
    assert {f.market for f in features} == set(by_market) and all(f.news_24h >= 1 for f in features)
    assert {f.volume_5m for f in features if f.market == "m_sotu"} == {D(15)}  # both tokens' prints

    # signal.news -> Bot 4 (its confidence floor lowered to what this weak match carries)
    shipped = load_config(project_root() / "config")
    config = shipped.bot("bot_04")
    config = msgspec.structs.replace(
        config, params=msgspec.structs.replace(config.params, min_confidence=D("0.01"))
    )
    bot = NewsScalping(config, shipped.system.venue)
    bot.on_market(SOTU)
    bot.on_top_of_book(books[0])
    bot.on_top_of_book(tob("no_s", "m_sotu", "0.69", "0.71", ts_ms=books[0].ts_ms))
    intents = bot.on_signal(sotu)
    assert [(i.asset_id, i.side, i.order_type) for i in intents] == [("yes_s", "BUY", "FAK")]


def test_the_signallers_snapshot_keeps_markets_mids_and_attention() -> None:
    """The recovery store pickles a market key's signaller: a restore keeps what the features and the
    price are computed from."""
    state = SignallerState(BaselineForecaster, {"guardian": D("0.9")}, threshold=1.0)
    s = state.signaller
    s.on_market(SOTU)
    top = tob("yes_s", "m_sotu", "0.29", "0.31", ts_ms=T0)
    s.on_book(top)
    state.recent.add(top)
    s.on_trade(LastTradePrice(asset_id="no_s", market="m_sotu", price="0.7", size="7", side="BUY",
                              timestamp=str(T0)))  # fmt: skip
    s.attention.add("m_sotu", T0)
    restored_state = pickle.loads(pickle.dumps(state))
    restored = restored_state.signaller
    assert (restored.markets, restored.mids, restored.not_yes) == (s.markets, s.mids, {"no_s"})
    assert restored_state.recent.at(["yes_s", "no_s"], T0) == {"yes_s": D("0.30")}
    later = restored.attention.add("m_sotu", T0 + 1000, "yes_s")
    assert (later.news_5m, later.volume_5m, later.momentum_5m) == (2, D(7), D(0))


def test_feeds_to_signals_and_attention_through_kafka(
    prefixed_settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    """The flow on the real broker: md.* in, the feed polled to news.item, then signal.news and
    features.news out; an unreadable md.book message is dead-lettered with the reason."""
    settings = dataclasses.replace(prefixed_settings, state_dir=tmp_path / "state")
    ensure_topics(settings, ["md.markets", "md.tob", "md.book", "news.item", "signal.news", "features.news",
                             "dlq.signals"])  # fmt: skip
    now_ms = time.time_ns() // MS
    kafka = producer(settings)
    for m in (SOTU, FBI, OTHER):
        kafka.send(f"{settings.topic_prefix}md.markets", key=m.condition_id.encode(), value=encode(m))
    books = [tob("yes_s", "m_sotu", "0.29", "0.31", ts_ms=now_ms - 60_000),
             tob("yes_s", "m_sotu", "0.31", "0.33", ts_ms=now_ms - 30_000),
             tob("yes_f", "m_fbi", "0.49", "0.51", ts_ms=now_ms - 30_000)]  # fmt: skip
    for b in books:
        kafka.send(f"{settings.topic_prefix}md.tob", key=b.asset_id.encode(), value=encode(b))
    for asset, size in (("yes_s", "12"), ("no_s", "3")):
        print_ = LastTradePrice(asset_id=asset, market="m_sotu", price="0.32", size=size, side="BUY",
                                timestamp=str(now_ms - 10_000))  # fmt: skip
        kafka.send(f"{settings.topic_prefix}md.book", key=b"m_sotu", value=encode(print_))
    kafka.send(f"{settings.topic_prefix}md.book", key=b"m_sotu", value=b'{"event_type": "book", "market"')
    kafka.flush()
    kafka.close()

    body = (shared_data / "news" / "guardian.rss").read_bytes()
    recovery = recovery_store(tmp_path / "recovery", 1)
    with serve_feeds({"/guardian.rss": body}) as feeds:
        feed = [FeedConfig(url=feeds.url + "/guardian.rss", source="guardian")]
        # Kafka gives no order across topics: the market data first, then the feed polled to news.item
        # (read then or by the last run)
        for polls in (0, 1, 0):
            flow = build_flow(settings, feeds=FeedSource(feed, max_polls=polls), threshold=1.0, tail=False)
            run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)

    items = consume_until(settings, "news.item", lambda v: len(v) >= 55, timeout_s=20)
    assert len(items) == 55
    signals = [decode("signal.news", v) for v in consume_until(settings, "signal.news", bool, timeout_s=20)]
    sotu = [s for s in signals if s.market == "m_sotu"]
    assert sotu and all(s.model_version and s.model_version.startswith("baseline:") for s in sotu)
    features = [decode("features.news", v)
                for v in consume_until(settings, "features.news", bool, timeout_s=20)]  # fmt: skip
    assert {f.market for f in features} == {s.market for s in signals}
    [first, *_] = [f for f in features if f.market == "m_sotu"]
    # the YES mid 0.30 a minute ago, 0.32 now; 12 + 3 shares printed 10 s before the item
    assert (first.momentum_5m, first.volume_5m, first.volume_1h, first.news_24h) == (D("0.02"), 15, 15, 1)
    letters = [decode("dlq.signals", v) for v in consume_until(settings, "dlq.signals", bool, timeout_s=20)]
    assert [(d.source, d.topic) for d in letters] == [("news.decode", f"{settings.topic_prefix}md.book")]
