"""The news flow in process: real feed items (guardian.rss through the local feed server) polled to
news.item, matched to the markets of md.markets, forecast by the real `openai` client against the local
LLM server, published as signal.news; and those signals drive Bot 4 to an order."""

from __future__ import annotations

import dataclasses
import pickle
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import httpx
import msgspec
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

from pets.bots.news_scalping import NewsScalping
from pets.flows.news import FeedSource, SignallerState, build_flow
from pets.flows.trading_io import Routed
from pets.pipelines.news.feed_server import serve_feeds
from pets.pipelines.news.feeds import FeedConfig, FeedPoller
from pets.pipelines.news.forecaster import BaselineForecaster, LlmForecaster, LlmSettings
from pets.pipelines.news.llm_server import serve_llm
from pets.schemas.codec import encode
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
    """The recovery store pickles the signaller: a restore keeps what the features are computed from."""
    state = SignallerState(BaselineForecaster, {"guardian": D("0.9")}, threshold=1.0)
    s = state.signaller
    s.on_market(SOTU)
    s.on_book(tob("yes_s", "m_sotu", "0.29", "0.31", ts_ms=T0))
    s.on_trade(LastTradePrice(asset_id="no_s", market="m_sotu", price="0.7", size="7", side="BUY",
                              timestamp=str(T0)))  # fmt: skip
    s.attention.add("m_sotu", T0)
    restored = pickle.loads(pickle.dumps(state)).signaller
    assert (restored.markets, restored.mids, restored.yes_market) == (s.markets, s.mids, {"yes_s": "m_sotu"})
    later = restored.attention.add("m_sotu", T0 + 1000)
    assert (later.news_5m, later.volume_5m, later.momentum_5m) == (2, D(7), D(0))
