"""bots: market state, own execution reports, risk denials and operator commands -> order intents.

    bots_in (md.markets, md.tob, exec.report, order.denied, bot.control, and the signal.* topics
             the enabled bots read)
        -> decode -> split_dead_letters
        -> fan_out_to_bots -> route_events (per bot; signals through its SignalGate)
        -> run_bots (per bot and market / event)
        -> intents -> bots_out (Kafka order.intent, key market)
        dead letters -> bots_out (Kafka dlq.trading; signals the gates dropped: dlq.signals)

Only enabled bots run (config/bots/*.yaml). Bytewax keeps every bot instance and the input offsets
in its recovery store; after a crash the events since the last snapshot are replayed and the bots,
whose client order ids are deterministic, propose the same intents again: the risk flow refuses the
repeats as duplicates, so nothing is ordered twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from pets.bots.base import Bot
from pets.bots.registry import STRATEGY_CLASSES, bot_class, enabled_bots, signal_topics
from pets.flows.bot_operator import run_bots
from pets.flows.trading_io import (
    Routed,
    RoutedKafkaSink,
    TopicDecoder,
    kafka_source,
    log_dead_letter,
    order_log,
)
from pets.schemas.config import PetsConfig, load_config
from pets.schemas.control import DeadLetter
from pets.schemas.orders import OrderIntent
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

FLOW_NAME = "bots"
INPUT_TOPICS = ("md.markets", "md.tob", "exec.report", "order.denied", "bot.control")


def build_flow(
    settings: Settings,
    source: Source[Any] | None = None,
    sink: Sink[Routed] | None = None,
    *,
    config: PetsConfig | None = None,
    strategy_classes: Mapping[str, type[Bot]] = STRATEGY_CLASSES,
    tail: bool = True,
) -> Dataflow:
    """The bots dataflow; defaults to Kafka in and out. Tests inject a TestingSource of
    KafkaSourceMessages (with their topic names) and a TestingSink of `Routed` outputs, or read Kafka
    to its end (`tail=False`); `strategy_classes` replaces the registry (a test's own bot)."""
    config = config or load_config(settings.config_dir)
    topics = input_topics(config, strategy_classes)
    decode = TopicDecoder(
        load_topic_registry(settings.config_dir),
        settings.topic_prefix,
        topics,
        f"{FLOW_NAME}.decode",
        settings.max_message_bytes,
    )
    flow = Dataflow(FLOW_NAME)
    messages = op.input(
        "bots_in",
        flow,
        source or kafka_source(settings, topics, tail=tail, order_log=order_log(settings, FLOW_NAME)),
    )
    decoded = op.map("decode", messages, decode)
    split = op.branch("split_dead_letters", decoded, lambda item: not isinstance(item, DeadLetter))
    intents, dropped = run_bots(split.trues, config, strategy_classes)
    logged = op.inspect("log_dead_letters", split.falses, log_dead_letter)
    out = op.merge(
        "all_out",
        op.map("intents", intents, _intent_out),
        op.map("dead_letters", logged, lambda dead: Routed("dlq.trading", dead.source, dead)),
        op.map("dropped_signals_out", dropped, lambda dead: Routed("dlq.signals", dead.source, dead)),
    )
    op.output("bots_out", out, sink or RoutedKafkaSink(settings))
    return flow


def input_topics(
    config: PetsConfig, strategy_classes: Mapping[str, type[Bot]] = STRATEGY_CLASSES
) -> tuple[str, ...]:
    """INPUT_TOPICS and the signal topics some enabled bot reads (no other signal topic is read)."""
    classes = [bot_class(bot, strategy_classes) for bot in enabled_bots(config)]
    return (*INPUT_TOPICS, *signal_topics(classes))


def _intent_out(intent: OrderIntent) -> Routed:
    return Routed("order.intent", intent.market, intent)
