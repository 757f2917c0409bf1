"""news: feeds -> news.item; news.item + the market universe + prices -> signal.news.

    feeds_in (FeedPoller: config/news.yaml)  -> feeds_out (Kafka news.item, key source; dlq.signals)
    news_in (md.markets, md.tob, md.book, news.item) -> decode -> split_dead_letters
        -> match_news (ONE key: the open markets' BM25 index and the story dedupe; md.markets, news.item)
           -> one `Matched` per matched market, keyed by that market
        -> market_news (keyed by condition id: its MarketInfo, its tokens' mids (md.tob), its attention
           (md.tob, md.book's last_trade_price prints); a Matched record: forecast, signal, attention)
        -> news_out (Kafka signal.news and features.news, key market)

Matching needs the whole market index, so it stays one key (a lookup per item, no price, no
forecaster); the market keys, which call the forecaster (the LLM one when PETS_LLM_BASE_URL is set,
else the baseline calibration forecaster, pipelines/news/forecaster.py), spread over the workers with
their markets' md.tob / md.book partitions. One code path for one worker and a cluster, one
implementation with `pets run`: `NewsSignaller.match` on the matcher key, `NewsSignaller.signal_for`
on a market key's signaller (which holds that market only).

A Matched record reaches its market key one step after the tops it was matched behind, and in a
cluster from another worker: the forecast reads the mids in force at the item's received time
(`RecentMids`, from the tops' venue times), not whatever tops have arrived since, so a market's
result does not depend on that timing (docs/news.md). Each key's state is in the recovery store (the
matcher: markets and stories; a market key: its market, mids and attention); the index and the
forecaster are made anew after a restore. The forecaster is one per worker, shared by its market keys:
an LLM budget (PETS_LLM_REQUESTS_PER_MIN, _TOKENS_PER_MIN) holds per worker.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import DynamicSource, Source, StatelessSourcePartition
from bytewax.outputs import Sink

from pets.flows.recovery import stateful_flat_map
from pets.flows.trading_io import Routed, RoutedKafkaSink, TopicDecoder, kafka_source, log_dead_letter
from pets.observability import metrics
from pets.pipelines.forecasts import default_model_source
from pets.pipelines.news.feeds import FeedConfig, FeedPoller, load_feeds
from pets.pipelines.news.forecaster import Forecast, Forecaster, forecaster_from_env
from pets.pipelines.news.signals import NewsSignaller
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import LastTradePrice, MarketInfo, TopOfBook
from pets.schemas.signals import NewsItem
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

FLOW_NAME = "news"
INPUT_TOPICS = ("md.markets", "md.tob", "md.book", "news.item")
MATCHER_KEY = "matcher"


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


RECENT_MS = 60_000  # the venue time a market key keeps its tokens' mid changes for: a record's lag


class RecentMids:
    """Each token's mid changes over the last RECENT_MS of its tops' venue time (and the one in force
    before them): the price a Matched record's forecast reads is the mid at or before its item's time."""

    def __init__(self) -> None:
        self.tokens: dict[str, deque[tuple[int, Decimal]]] = {}

    def add(self, tob: TopOfBook) -> None:
        mid = tob.mid
        if mid is None:
            return
        changes = self.tokens.get(tob.asset_id)
        if changes is None:
            changes = self.tokens[tob.asset_id] = deque()
        if not changes or changes[-1][1] != mid:
            changes.append((tob.ts_ms, mid))
        while len(changes) > 1 and changes[1][0] <= tob.ts_ms - RECENT_MS:
            changes.popleft()

    def at(self, assets: Sequence[str], at_ms: int) -> dict[str, Decimal]:
        """The mids of `assets` in force at `at_ms` (a token without a top at or before it has none)."""
        out = {}
        for asset in assets:
            for ts_ms, mid in reversed(self.tokens.get(asset, ())):
                if ts_ms <= at_ms:
                    out[asset] = mid
                    break
        return out


class SignallerState:
    """A key's NewsSignaller in the recovery store, the matcher's (markets, stories) or a market's (its
    market, mids, attention, recent mids); the index is rebuilt on use and the forecaster is handed
    in again by the step (`forecaster` is the signaller's until then)."""

    def __init__(
        self,
        make_forecaster: Callable[[], Forecaster],
        reliability: dict[str, Decimal],
        threshold: float | None,
    ) -> None:
        self.signaller = NewsSignaller(make_forecaster(), reliability, threshold)
        self.recent = RecentMids()

    def __getstate__(self) -> dict[str, Any]:
        s = self.signaller
        return {"reliability": s.reliability, "threshold": s.threshold, "markets": s.markets, "mids": s.mids,
                "counts": s.counts, "attention": s.attention, "story_markets": s.story_markets,
                "not_yes": s.not_yes, "recent": self.recent}  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.signaller = NewsSignaller(Unbound(), state["reliability"], state["threshold"])
        self.signaller.markets, self.signaller.mids = state["markets"], state["mids"]
        self.signaller.counts, self.signaller.attention = state["counts"], state["attention"]
        self.signaller.story_markets, self.signaller.not_yes = state["story_markets"], state["not_yes"]
        self.recent = state["recent"]


class Unbound:
    """The forecaster of a restored signaller until its step hands it the flow's, and of the matcher
    key, which forecasts nothing."""

    name = "unbound"

    def forecast(
        self, item: NewsItem, market: MarketInfo, price: Decimal, now_ms: int, requester: str = ""
    ) -> Forecast | None:
        return None

    def total_cost_usd(self) -> Decimal:
        return Decimal(0)


@dataclass(frozen=True, slots=True)
class Matched:
    """One market an item is about, from the matcher key to that market's key: the market as the
    matcher knew it (None: closed since the story's first sighting) and the match's score."""

    item: NewsItem
    market: str
    info: MarketInfo | None
    score: float


def _default_forecaster() -> Forecaster:
    return forecaster_from_env(default_model_source("calibration"), observe=metrics.observe_llm)


def _keyed(event: Any) -> list[tuple[str, Any]]:
    """An event under the keys that read it: md.markets both the matcher and its market's key, an item
    the matcher, a top or a trade print its market's key (md.book's other frames none)."""
    if isinstance(event, TopOfBook | LastTradePrice):
        return [(event.market, event)]
    if isinstance(event, NewsItem):
        return [(MATCHER_KEY, event)]
    if isinstance(event, MarketInfo):
        return [(MATCHER_KEY, event), (event.condition_id, event)]
    return []


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
    local = threading.local()

    def forecaster() -> Forecaster:
        """The worker's own (a worker is a thread): shared by its market keys, not across workers (the
        LLM forecaster's budget and cache are not thread-safe)."""
        made: Forecaster | None = getattr(local, "forecaster", None)
        if made is None:
            made = local.forecaster = make_forecaster()
        return made

    def match(
        state: SignallerState | None, event: MarketInfo | NewsItem
    ) -> tuple[SignallerState, list[tuple[str, Matched]]]:
        if state is None:
            state = SignallerState(Unbound, reliability, threshold)
        s = state.signaller
        if isinstance(event, MarketInfo):
            s.on_market(event)
            return state, []
        return state, [(m, Matched(event, m, s.markets.get(m), score)) for m, score in s.match(event)]

    def signal(state: SignallerState | None, event: Any) -> tuple[SignallerState, list[Routed]]:
        if state is None:
            state = SignallerState(Unbound, reliability, threshold)
        s = state.signaller
        if isinstance(event, TopOfBook):
            s.on_book(event)
            state.recent.add(event)
        elif isinstance(event, LastTradePrice):
            s.on_trade(event)
        elif isinstance(event, MarketInfo):
            s.on_market(event)
        elif isinstance(event, Matched):
            s.forecaster = forecaster()
            item, info = event.item, event.info
            mids = state.recent.at(info.token_ids if info is not None else (), item.received_ns // 1_000_000)
            sig, feature = s.signal_for(item, event.market, info, event.score, mids)
            out = [Routed("features.news", feature.market, feature)]
            return state, out if sig is None else [Routed("signal.news", sig.market, sig), *out]
        return state, []

    flow = Dataflow(FLOW_NAME)
    polled = op.input("feeds_in", flow, feeds or FeedSource(feed_list))
    messages = op.input("news_in", flow, source or kafka_source(settings, INPUT_TOPICS, tail=tail))
    decoded = op.map("decode", messages, decode)
    split = op.branch("split_dead_letters", decoded, lambda item: not isinstance(item, DeadLetter))
    keyed = op.branch("to_matcher", op.flat_map("key", split.trues, _keyed), lambda kv: kv[0] == MATCHER_KEY)
    matched = stateful_flat_map("match_news", keyed.trues, match)
    by_market = op.merge("by_market", keyed.falses, op.map("matched_by_market", matched, lambda kv: kv[1]))
    signals = op.map("signals_out", stateful_flat_map("market_news", by_market, signal), lambda kv: kv[1])
    logged = op.inspect("log_dead_letters", split.falses, log_dead_letter)
    dead_out = op.map("dead_letters", logged, lambda dead: Routed("dlq.signals", dead.source, dead))
    out = op.merge("all_out", polled, signals, dead_out)
    op.output("news_out", out, sink or RoutedKafkaSink(settings))
    return flow
