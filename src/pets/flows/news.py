"""news: feeds -> news.item; news.item + the market universe + prices -> signal.news.

    feeds_in (FeedPoller: config/news.yaml)  -> feeds_out (Kafka news.item, key source; dlq.signals)
    news_in (md.markets, md.tob, md.book, news.item) -> decode -> split_dead_letters
        -> signal_news (one NewsSignaller: match, forecast, attention)
        -> news_out (Kafka signal.news and features.news, key market)

The forecaster is the LLM one when PETS_LLM_BASE_URL is set, else the baseline calibration forecaster
(pipelines/news/forecaster.py). md.book is read for its last_trade_price prints only (the attention
features' trade volume). The signaller's state (markets, mids, counts, attention) is in the recovery
store; its market index and forecaster are rebuilt after a restore.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import DynamicSource, Source, StatelessSourcePartition
from bytewax.outputs import Sink

from pets.flows.trading_io import Routed, RoutedKafkaSink, TopicDecoder, kafka_source, log_dead_letter
from pets.observability import metrics
from pets.pipelines.forecasts import default_model_source
from pets.pipelines.news.feeds import FeedConfig, FeedPoller, load_feeds
from pets.pipelines.news.forecaster import Forecaster, forecaster_from_env
from pets.pipelines.news.signals import NewsSignaller
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import LastTradePrice, MarketInfo, TopOfBook
from pets.schemas.signals import NewsItem
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

FLOW_NAME = "news"
INPUT_TOPICS = ("md.markets", "md.tob", "md.book", "news.item")


class _FeedPartition(StatelessSourcePartition[Routed]):
    def __init__(self, poller: FeedPoller | None, max_polls: int | None) -> None:
        self.poller = poller
        self.polls_left = max_polls

    def next_batch(self) -> list[Routed]:
        if self.poller is None or self.polls_left == 0:
            raise StopIteration
        if self.polls_left is not None:
            self.polls_left -= 1
        result = self.poller.poll_due()
        return [Routed("news.item", item.source, item) for item in result.items] + [
            Routed("dlq.signals", dead.source, dead) for dead in result.dead_letters
        ]

    def next_awake(self) -> datetime | None:
        if self.poller is None or self.polls_left == 0:
            return None  # at once: to end
        return datetime.fromtimestamp(self.poller.next_due_s(), UTC)

    def close(self) -> None:
        if self.poller is not None:
            self.poller.close()


class FeedSource(DynamicSource[Routed]):
    """Polls the feeds on worker 0 only (one poller: no item fetched twice); `max_polls` ends it (tests)."""

    def __init__(self, feeds: Sequence[FeedConfig], max_polls: int | None = None) -> None:
        self.feeds = list(feeds)
        self.max_polls = max_polls

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _FeedPartition:
        return _FeedPartition(FeedPoller(self.feeds) if worker_index == 0 else None, self.max_polls)


class SignallerState:
    """The NewsSignaller in the recovery store: markets and mids; the forecaster is made anew."""

    def __init__(
        self,
        make_forecaster: Callable[[], Forecaster],
        reliability: dict[str, Decimal],
        threshold: float | None,
    ) -> None:
        self.make_forecaster = make_forecaster
        self.signaller = NewsSignaller(make_forecaster(), reliability, threshold)

    def __getstate__(self) -> dict[str, Any]:
        s = self.signaller
        return {"reliability": s.reliability, "threshold": s.threshold, "markets": s.markets, "mids": s.mids,
                "counts": s.counts, "attention": s.attention, "story_markets": s.story_markets}  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.make_forecaster = _default_forecaster
        self.signaller = NewsSignaller(self.make_forecaster(), state["reliability"], state["threshold"])
        self.signaller.markets, self.signaller.mids = state["markets"], state["mids"]
        self.signaller.counts, self.signaller.attention = state["counts"], state["attention"]
        self.signaller.story_markets = state["story_markets"]


def _default_forecaster() -> Forecaster:
    return forecaster_from_env(default_model_source("calibration"), observe=metrics.observe_llm)


def build_flow(
    settings: Settings,
    source: Source[Any] | None = None,
    sink: Sink[Routed] | None = None,
    *,
    feeds: Source[Routed] | None = None,
    make_forecaster: Callable[[], Forecaster] = _default_forecaster,
    threshold: float | None = None,
    tail: bool = True,
) -> Dataflow:
    """Kafka in and out by default; tests inject sources, a sink, a forecaster factory and a match
    threshold (the default is tuned on the real universe of thousands of markets)."""
    feed_list = load_feeds(settings.config_dir / "news.yaml")
    reliability = {f.source: f.reliability for f in feed_list}
    decode = TopicDecoder(load_topic_registry(settings.config_dir), settings.topic_prefix, INPUT_TOPICS,
                          f"{FLOW_NAME}.decode", settings.max_message_bytes)  # fmt: skip
    flow = Dataflow(FLOW_NAME)
    polled = op.input("feeds_in", flow, feeds or FeedSource(feed_list))
    messages = op.input("news_in", flow, source or kafka_source(settings, INPUT_TOPICS, tail=tail))
    decoded = op.map("decode", messages, decode)
    split = op.branch("split_dead_letters", decoded, lambda item: not isinstance(item, DeadLetter))
    keyed = op.key_on("one_signaller", split.trues, lambda _: "news")

    def step(state: SignallerState | None, event: Any) -> tuple[SignallerState, list[Routed]]:
        if state is None:
            state = SignallerState(make_forecaster, reliability, threshold)
        s = state.signaller
        if isinstance(event, TopOfBook):
            s.on_book(event)
            return state, []
        if isinstance(event, MarketInfo):
            s.on_market(event)
            return state, []
        if isinstance(event, LastTradePrice):
            s.on_trade(event)
            return state, []
        if isinstance(event, NewsItem):
            signals, features = s.process(event)
            return state, [Routed("signal.news", sig.market, sig) for sig in signals] + [
                Routed("features.news", f.market, f) for f in features
            ]
        return state, []

    signals = op.flat_map("signals_out", op.stateful_map("signal_news", keyed, step), lambda kv: kv[1])
    logged = op.inspect("log_dead_letters", split.falses, log_dead_letter)
    dead_out = op.map("dead_letters", logged, lambda dead: Routed("dlq.signals", dead.source, dead))
    out = op.merge("all_out", polled, signals, dead_out)
    op.output("news_out", out, sink or RoutedKafkaSink(settings))
    return flow
