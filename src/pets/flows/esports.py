"""esports: game events and the market universe -> esports trading signals.

    esports_in (esports.event, md.markets) -> decode -> split_dead_letters
        -> key_all (one state: the esports markets span matches)
        -> make_signals (EsportsSignals: schedule -> market mapping, the promoted esports_win model)
        -> signals_out (Kafka signal.esports, key market); dead letters -> dlq.signals

The events come from `pets esports feed` (the live-stats poller; each event carries the feed lag and
the game state). The model is the promoted `esports_win` version of the model store, checked on every
event, so a newly promoted version is used without a restart. Bytewax keeps the state (series scores,
links) and the offsets in its recovery store.
"""

from __future__ import annotations

from typing import Any

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from pets.flows.trading_io import Routed, RoutedKafkaSink, TopicDecoder, kafka_source, log_dead_letter
from pets.pipelines.esports import winmodel as wm
from pets.pipelines.esports.signals import EsportsSignals
from pets.pipelines.forecasts import ModelStoreSource
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo
from pets.schemas.signals import EsportsEvent, Signal
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

FLOW_NAME = "esports"
INPUT_TOPICS = ("md.markets", "esports.event")


class PromotedWinModel:
    """The model store's promoted esports_win version (read again only when the pointer changes)."""

    def __init__(self, source: ModelStoreSource) -> None:
        self.source = source
        self.loaded: tuple[wm.WinModel, str] | None = None

    def __call__(self) -> tuple[wm.WinModel, str] | None:
        version = self.source.current_version()
        if version is None:
            return None
        name = f"{wm.MODEL_NAME}@{version}"
        if self.loaded is None or self.loaded[1] != name:
            try:
                raw = (self.source.folder / version / "model.json").read_bytes()
                self.loaded = (wm.model_from_json(raw), name)
            except (OSError, ValueError):
                return self.loaded  # a half-written or foreign version: keep the one we have
        return self.loaded


def _step(
    state: EsportsSignals | None, item: Any, load: PromotedWinModel
) -> tuple[EsportsSignals, list[Signal]]:
    state = state or EsportsSignals(load)
    state.load_model = load
    if isinstance(item, MarketInfo):
        state.on_market(item)
        return state, []
    if isinstance(item, EsportsEvent):
        return state, state.on_event(item)
    return state, []


def build_flow(
    settings: Settings,
    source: Source[Any] | None = None,
    sink: Sink[Routed] | None = None,
    *,
    tail: bool = True,
) -> Dataflow:
    """The esports dataflow; Kafka in and out by default (tests inject a TestingSource of
    KafkaSourceMessages and a TestingSink of `Routed`)."""
    decode = TopicDecoder(
        load_topic_registry(settings.config_dir), settings.topic_prefix, INPUT_TOPICS, f"{FLOW_NAME}.decode",
        settings.max_message_bytes,
    )  # fmt: skip
    load = PromotedWinModel(ModelStoreSource(settings.state_dir / "models", wm.MODEL_NAME))
    flow = Dataflow(FLOW_NAME)
    messages = op.input("esports_in", flow, source or kafka_source(settings, INPUT_TOPICS, tail=tail))
    decoded = op.map("decode", messages, decode)
    split = op.branch("split_dead_letters", decoded, lambda item: not isinstance(item, DeadLetter))
    keyed = op.key_on("key_all", split.trues, lambda _: FLOW_NAME)
    signals = op.stateful_map("make_signals", keyed, lambda state, item: _step(state, item, load))
    flat = op.flat_map("signals", signals, lambda kv: kv[1])
    logged = op.inspect("log_dead_letters", split.falses, log_dead_letter)
    out = op.merge(
        "all_out",
        op.map("signals_out_route", flat, lambda s: Routed("signal.esports", s.market, s)),
        op.map("dead_letters", logged, lambda dead: Routed("dlq.signals", dead.source, dead)),
    )
    op.output("esports_out", out, sink or RoutedKafkaSink(settings))
    return flow
