"""esports: game events and the market universe -> esports trading signals.

    esports_in (esports.event, md.markets) -> decode -> split_dead_letters
        -> link_matches (one key: the esports markets, each match's links to them; a lookup per event)
        -> match_signals (keyed by match: its series score, its events priced by the promoted
           esports_win model) -> signals_out (Kafka signal.esports, key market); dead letters -> dlq.signals

A match's events reach its key in order (the one key ahead of them hands them on in input order); in a
cluster the match keys, which evaluate the model, spread over the workers. Keyed by match, not by
market: a match's game and series markets share its series score and one model evaluation per event.

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

from pets.flows.recovery import stateful_flat_map
from pets.flows.trading_io import Routed, RoutedKafkaSink, TopicDecoder, kafka_source, log_dead_letter
from pets.pipelines.esports import winmodel as wm
from pets.pipelines.esports.signals import MarketLink, MatchLinks, SignalMaker, match_signals
from pets.pipelines.forecasts import ModelStoreSource
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo
from pets.schemas.signals import EsportsEvent
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

FLOW_NAME = "esports"
INPUT_TOPICS = ("md.markets", "esports.event")
LINKS_KEY = "links"
Linked = tuple[str, tuple[EsportsEvent, list[MarketLink]]]  # match id, (event, its match's links)


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


def _link(state: MatchLinks | None, item: Any) -> tuple[MatchLinks, list[Linked]]:
    state = state or MatchLinks()
    if isinstance(item, MarketInfo):
        state.on_market(item)
    elif isinstance(item, EsportsEvent):
        links = state.on_event(item)
        if links is not None:
            return state, [(item.match_id, (item, links))]
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
    keyed = op.key_on("key_links", split.trues, lambda _: LINKS_KEY)
    linked = op.map("by_match", stateful_flat_map("link_matches", keyed, _link), lambda kv: kv[1])

    def signal(maker: SignalMaker | None, item: tuple[EsportsEvent, list[MarketLink]]) -> Any:
        return match_signals(maker, *item, load)

    signals = stateful_flat_map("match_signals", linked, signal)
    flat = op.map("signals", signals, lambda kv: kv[1])
    logged = op.inspect("log_dead_letters", split.falses, log_dead_letter)
    out = op.merge(
        "all_out",
        op.map("signals_out_route", flat, lambda s: Routed("signal.esports", s.market, s)),
        op.map("dead_letters", logged, lambda dead: Routed("dlq.signals", dead.source, dead)),
    )
    op.output("esports_out", out, sink or RoutedKafkaSink(settings))
    return flow
