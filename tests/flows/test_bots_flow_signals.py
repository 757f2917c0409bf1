"""Signals in the Bytewax bots flow: the flow reads only the signal topics some enabled bot reads,
routes each signal to the bots that read its source (through each bot's SignalGate), dead-letters
what the gates drop, and carries the cause on the intents; in process and through the real broker."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

from pets.flows.bots import build_flow, input_topics
from pets.flows.recovery import recovery_store
from pets.flows.trading_io import Routed
from pets.schemas.codec import encode
from pets.schemas.config import load_config
from pets.schemas.control import DeadLetter
from pets.schemas.orders import OrderIntent
from pets.settings import Settings, project_root
from signal_bots import CLASSES, enable, ranking, signal, wallet_fill
from venue_factories import T0, market, tob

PREFIX = "unit."
SHIPPED = load_config(project_root() / "config")
# bot_04 runs SignalTaker (news, model), bot_02 EsportsTaker (esports); bot_01 reads no signal;
# every bot trades every category here
ALL_CATEGORIES = tuple(msgspec.structs.replace(b, categories=()) for b in SHIPPED.bots)
CONFIG = enable(msgspec.structs.replace(SHIPPED, bots=ALL_CATEGORIES), "bot_01", "bot_02", "bot_04")
M1 = market("m1", ("yes1", "no1"), category="esports")
BOOKS = [tob("yes1", "m1", "0.45", "0.47", T0), tob("no1", "m1", "0.53", "0.55", T0)]


def msg(topic: str, message: Any) -> KafkaSourceMessage[bytes, bytes]:
    topic = f"{PREFIX}{topic}"
    return KafkaSourceMessage(key=None, value=encode(message), topic=topic, offset=0, partition=0)  # type: ignore[arg-type]


def run(settings: Settings, items: list[Any]) -> list[Routed]:
    out: list[Routed] = []
    flow = build_flow(
        dataclasses.replace(settings, topic_prefix=PREFIX),
        TestingSource(items),
        TestingSink(out),
        config=CONFIG,
        strategy_classes=CLASSES,
    )
    run_main(flow)
    return out


def intents(outputs: list[Routed]) -> list[OrderIntent]:
    return [r.message for r in outputs if r.topic == "order.intent"]  # type: ignore[misc]


def dropped(outputs: list[Routed]) -> list[DeadLetter]:
    return [r.message for r in outputs if r.topic == "dlq.signals"]  # type: ignore[misc]


def test_the_flow_reads_only_the_signal_topics_enabled_bots_read() -> None:
    assert input_topics(CONFIG, CLASSES)[-3:] == ("signal.esports", "signal.model", "signal.news")
    assert not any(t.startswith("signal.") for t in input_topics(enable(SHIPPED, "bot_01"), CLASSES))
    assert input_topics(enable(SHIPPED, "bot_02"), CLASSES)[-1:] == ("signal.esports",)


def test_signals_reach_the_bots_that_read_their_source(settings: Settings) -> None:
    out = run(
        settings,
        [
            msg("md.markets", M1),
            *[msg("md.tob", b) for b in BOOKS],
            msg("signal.news", signal(1)),
            msg("signal.esports", signal(2, source="esports", asset_id="no1")),
            msg("signal.model", signal(3, source="model")),
            msg("signal.news", signal(1)),  # a re-delivered duplicate
        ],
    )

    got = sorted((i.bot_id, i.asset_id, i.cause.source, i.cause.signal_id) for i in intents(out) if i.cause)
    assert got == [
        ("bot_02", "no1", "esports", "s2"),
        ("bot_04", "yes1", "model", "s3"),
        ("bot_04", "yes1", "news", "s1"),
    ]
    [intent] = [i for i in intents(out) if i.cause and i.cause.signal_id == "s1"]
    assert intent.cause is not None and intent.cause.model_version == "test-model@1"
    assert str(intent.cause.probability) == "0.62" and intent.probability == intent.cause.probability
    assert [(d.reason, d.topic) for d in dropped(out)] == [("duplicate signal id s1", "signal.news")]


def test_a_signal_waits_for_its_book_in_the_flow_then_times_out(settings: Settings) -> None:
    out = run(
        settings,
        [
            msg("md.markets", M1),
            msg("signal.news", signal(1)),  # no book yet: waits
            msg("md.tob", BOOKS[0]),  # frees it
            msg("signal.news", signal(2, asset_id="no1")),  # no1 has no book: waits ...
            # ... past book_wait_ms (a top showing something new: a repeated one moves no clock, `same_top`)
            msg("md.tob", tob("yes1", "m1", "0.44", "0.47", T0 + 2_001)),
        ],
    )
    assert [i.cause.signal_id for i in intents(out) if i.cause] == ["s1"]
    assert [d.reason for d in dropped(out)] == ["no fresh book for market m1 within 2000 ms"]


def _produce(settings: Settings, messages: list[tuple[str, Any]]) -> None:
    from pets.pipelines.kafka_io import producer

    kafka = producer(settings)
    try:
        for topic, message in messages:
            kafka.send(f"{settings.topic_prefix}{topic}", key=b"m1", value=encode(message))
        kafka.flush()
    finally:
        kafka.close()


def test_signals_through_the_real_kafka_source(prefixed_settings: Settings, tmp_path: Path) -> None:
    """Run 1 reads the market, run 2 its books, run 3 the signals, each resuming from the recovery
    store (across topics Kafka gives no order, so each comes in a run of its own)."""
    from pets.pipelines.kafka_io import ensure_topics

    settings = prefixed_settings
    outputs = ["order.intent", "dlq.trading", "dlq.signals"]
    ensure_topics(settings, [*input_topics(CONFIG, CLASSES), "signal.whale", *outputs])
    recovery = recovery_store(tmp_path / "recovery", 1)
    out: list[Routed] = []

    def run_kafka() -> None:
        sink = TestingSink(out)
        flow = build_flow(settings, sink=sink, config=CONFIG, strategy_classes=CLASSES, tail=False)
        run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)

    _produce(settings, [("md.markets", M1)])
    run_kafka()
    _produce(settings, [("md.tob", b) for b in BOOKS])
    run_kafka()
    _produce(
        settings,
        [
            ("signal.news", signal(1)),
            ("signal.news", signal(1)),
            ("signal.esports", signal(2, source="esports", asset_id="no1")),
            ("signal.whale", signal(4, source="whale")),  # no bot reads whale: the flow does not read it
        ],
    )
    run_kafka()

    got = sorted((i.bot_id, i.cause.signal_id) for i in intents(out) if i.cause)
    assert got == [("bot_02", "s2"), ("bot_04", "s1")], out
    assert [d.reason for d in dropped(out)] == ["duplicate signal id s1"]


def test_whale_fills_and_rankings_reach_only_the_bots_that_read_them(settings: Settings) -> None:
    config = enable(CONFIG, "bot_03", "bot_04")
    read = ("chain.fill", "signal.model", "signal.news", "whale.rankings")
    assert input_topics(config, CLASSES)[-4:] == read
    assert "chain.fill" not in input_topics(CONFIG, CLASSES)
    out: list[Routed] = []
    items = [
        msg("whale.rankings", ranking("0xwhale")),  # before any instance exists: replayed to new ones
        msg("md.markets", M1),
        *[msg("md.tob", b) for b in BOOKS],
        msg("chain.fill", wallet_fill("0xnobody", n=1)),
        msg("chain.fill", wallet_fill("0xwhale", n=2)),
        msg("chain.fill", wallet_fill("0xwhale", asset_id="unknown-token", n=3)),  # no market: dropped
    ]
    flow = build_flow(
        dataclasses.replace(settings, topic_prefix=PREFIX), TestingSource(items), TestingSink(out),
        config=config, strategy_classes=CLASSES,
    )  # fmt: skip
    run_main(flow)
    assert [(i.bot_id, i.asset_id, i.cause.source, i.cause.note) for i in intents(out) if i.cause] == [
        ("bot_03", "yes1", "whale", "0xwhale")
    ]


def test_a_router_restored_from_a_snapshot_taken_before_signals_still_routes() -> None:
    from pets.flows.bot_operator import Router
    from pets.native import attributes

    state = attributes(Router("bot_01", "market"))  # compiled, a Router has no __dict__
    for added in ("gate", "market_of", "rankings"):
        del state[added]
    old = Router.__new__(Router)
    old.__setstate__(state)
    assert old.route(M1) == [("bot_01|m1", M1)]
    assert old.route(wallet_fill("0xwhale")) == [("bot_01|m1", wallet_fill("0xwhale"))]


def test_bot_7_reads_the_news_flows_attention_features(settings: Settings) -> None:
    """The shipped Bot 7 in the bots flow: features.news (the news flow's NewsAttention) is one of its
    inputs and reaches the instance of its market; with the item's forecast it bets against the move.
    Without the features, the same forecast makes no trade (the bot counts no attention of its own)."""
    from decimal import Decimal

    from pets.schemas.signals import NewsAttention

    config = enable(CONFIG, "bot_07")
    assert input_topics(config, CLASSES)[-3:] == ("features.news", "signal.model", "signal.news")
    assert "features.news" not in input_topics(CONFIG, CLASSES)
    m = market("m1", ("yes1", "no1"), fee_rate=Decimal(0))
    books = [tob("no1", "m1", "0.14", "0.16", T0, bid_size="1000", ask_size="1000"),
             tob("yes1", "m1", "0.84", "0.86", T0, bid_size="1000", ask_size="1000")]  # fmt: skip
    # the YES mid moved +0.10 in the 5 min before the item: 0.75 -> 0.85
    features = NewsAttention(
        market="m1", ts_ns=(T0 + 1000) * 1_000_000, news_5m=1, news_1h=1, news_24h=1, news_5m_vs_24h=288.0,
        news_1h_vs_24h=24.0, momentum_5m=Decimal("0.10"), realized_vol_5m=None, volume_5m=Decimal(0),
        volume_1h=Decimal(0), volume_5m_vs_1h=0.0,
    )  # fmt: skip
    forecast = signal(1, ts_ns=(T0 + 1000) * 1_000_000, probability=Decimal("0.55"), model_version="llm:m")

    def run_bot_7(with_features: bool) -> list[OrderIntent]:
        out: list[Routed] = []
        news = [msg("features.news", features)] if with_features else []
        items = [msg("md.markets", m), *[msg("md.tob", b) for b in books], *news]
        items.append(msg("signal.news", forecast))
        flow = build_flow(
            dataclasses.replace(settings, topic_prefix=PREFIX), TestingSource(items), TestingSink(out),
            config=config, strategy_classes=CLASSES,
        )  # fmt: skip
        run_main(flow)
        return [i for i in intents(out) if i.bot_id == "bot_07"]

    [intent] = run_bot_7(with_features=True)
    # q' = 0.5 x 0.55 + 0.5 x 0.85 = 0.70 < 0.85 - 0.04: NO, at its ask
    assert (intent.asset_id, intent.side, intent.price) == ("no1", "BUY", Decimal("0.16"))
    assert intent.cause is not None and intent.cause.model_version == "llm:m"
    assert run_bot_7(with_features=False) == []
