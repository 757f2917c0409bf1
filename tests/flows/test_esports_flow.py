"""The esports path through the real broker: a recorded game served by the local live-stats feed, polled
and produced to esports.event, turned by the esports flow into signal.esports with the promoted model."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from bytewax.testing import TestingSink, run_main

from pets.assets.models.esports import train_win_model
from pets.assets.resources import ModelStoreResource
from pets.flows.esports import build_flow
from pets.flows.recovery import recovery_store
from pets.flows.trading_io import Routed
from pets.pipelines.esports.feed_server import serve_livestats
from pets.pipelines.esports.lol_livestats import LiveStatsPoller
from pets.pipelines.esports.publisher import publish_feed
from pets.pipelines.esports.riot_timeline import replay
from pets.pipelines.kafka_io import consumer, ensure_topics, producer
from pets.pipelines.polymarket.http import JsonHttpClient
from pets.schemas.codec import encode
from pets.schemas.control import DeadLetter
from pets.schemas.signals import Signal
from pets.settings import Settings
from venue_factories import market

pytestmark = pytest.mark.shared_data
NA1 = "esports/lol_NA1_4729149632_match_timeline.json"


def test_feed_to_signals_through_kafka(
    prefixed_settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    settings = dataclasses.replace(prefixed_settings, state_dir=tmp_path / "state")
    store = ModelStoreResource(root=str(settings.state_dir / "models"))
    trained = train_win_model(store, str(shared_data / "esports/datasets/lol_diamond_ranked_10min.csv"))
    assert trained.promoted
    ensure_topics(settings, ["md.markets", "esports.event", "signal.esports", "dlq.signals"])
    question = "LoL: Cloud9 vs Team Liquid - Game 1 Winner"
    outcomes = ("Cloud9", "Team Liquid")
    game_market = market("cm1", ("tok_b", "tok_r"), category="esports", question=question, outcomes=outcomes)
    kafka = producer(settings)
    kafka.send(f"{settings.topic_prefix}md.markets", key=b"cm1", value=encode(game_market))
    kafka.flush()
    kafka.close()

    recovery = recovery_store(tmp_path / "recovery", 1)
    out: list[Routed] = []

    def run_flow() -> None:
        run_main(build_flow(settings, sink=TestingSink(out), tail=False), epoch_interval=timedelta(0),
                 recovery_config=recovery)  # fmt: skip

    run_flow()  # the market first (Kafka gives no order across topics)
    frames = list(replay(json.loads((shared_data / NA1).read_text()), 1_700_000_000_000))
    schedule = {"teams": {"100": "Cloud9", "200": "Team Liquid Esports"}, "best_of": 1}
    with serve_livestats(
        frames, game_id="g1", match_id="m1", teams=("100", "200"), speed=400, lag_ms=200
    ) as feed:
        poller = LiveStatsPoller(
            JsonHttpClient(feed.url, retries=0), "g1", stall_after_ms=5_000, schedule=schedule
        )
        sent = publish_feed(settings, poller, interval_s=0.02)
    assert sent > 100
    run_flow()

    signals = [r.message for r in out if r.topic == "signal.esports"]
    assert all(isinstance(s, Signal) and s.market == "cm1" for s in signals)
    priced = [s for s in signals if s.probability is not None]
    assert len(priced) > 100 and {s.asset_id for s in priced} == {"tok_b"}
    assert {s.model_version for s in priced} == {f"esports_win@{trained.record.version}"}
    assert all(s.feed_lag_ms is not None and s.feed_lag_ms >= 200 for s in priced)
    # red won this game: by its end the model says blue loses
    assert priced[-1].probability is not None and priced[-1].probability < priced[0].probability
    assert signals[-1].probability is None and signals[-1].rationale == "game 1 ended"
    assert [r for r in out if r.topic == "dlq.signals"] == []


def test_unreadable_windows_are_dead_lettered_with_the_reason(
    prefixed_settings: Settings, shared_data: Path
) -> None:
    settings = prefixed_settings
    frames = list(replay(json.loads((shared_data / NA1).read_text()), 1_700_000_000_000))
    with serve_livestats(
        frames, game_id="g1", match_id="m1", teams=("100", "200"), speed=400, bad_responses=2
    ) as feed:
        poller = LiveStatsPoller(JsonHttpClient(feed.url, retries=0), "g1", stall_after_ms=5_000)
        sent = publish_feed(settings, poller, interval_s=0.02)
    assert sent > 100 and len(poller.errors) == 2  # the game still came through
    reader = consumer(settings, auto_offset_reset="earliest", consumer_timeout_ms=3_000)
    reader.subscribe([f"{settings.topic_prefix}dlq.signals"])
    letters = [msgspec.json.decode(m.value, type=DeadLetter) for m in reader]
    reader.close()
    assert [(d.source, d.reason) for d in letters] == [
        ("esports.feed", "frame without a valid 'gameState'")
    ] * 2
