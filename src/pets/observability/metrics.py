"""PETS's Prometheus metric families: one declaration each, updated at the flows' edges.

Every flow process serves them on `pets flow run NAME --metrics-port P` (prometheus_client's default
registry). Nothing here is called by the pure classes (bots/, risk/, execution/): the flows' sinks
observe what they publish (`TradingObserver` on every `Routed` output, `observe_tops` on md.tob),
the market WebSocket's own counters are read at scrape time (`ChannelStatsCollector`), and the
Kafka source reports its lag through librdkafka's statistics (`consumer_lag_from_stats`).

Conventions (docs/operations.md): a `pets_` prefix, base units (seconds, dollars, shares), `_total`
counters, ratios 0-1, histograms for latencies, labels by bot / side / zone / rule / topic, never by
market or asset (the series count stays bounded whatever the universe).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Info, disable_created_metrics
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from pets.execution.metrics import BREAKER_KINDS, ZERO, drawdown_after
from pets.risk.zones import zone_for
from pets.schemas.config import Zone
from pets.schemas.control import DeadLetter, RiskAlert
from pets.schemas.market_data import TopOfBook
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderDenied, OrderIntent, PnlSnapshot

disable_created_metrics()  # no `_created` twin of every counter and histogram: half the series

# latencies from a venue frame to our reaction: sub-millisecond in process, seconds when a flow lags
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SLIPPAGE_BUCKETS = (-0.05, -0.02, -0.01, -0.005, -0.001, 0, 0.001, 0.005, 0.01, 0.02, 0.05)

FLOW_INFO = Info("pets_flow", "The flow this process runs")

# trading (bots, risk, executor)
INTENTS = Counter("pets_order_intents_total", "Order intents proposed by the bots", ["bot", "side"])
ORDERS = Counter(
    "pets_orders_total",
    "Orders by status: approved or denied by risk, then the executor's report kinds",
    ["bot", "status"],
)
DENIALS = Counter("pets_denials_total", "Intents the risk gate denied, by rule", ["bot", "rule"])
TRADES = Counter(
    "pets_trades_total", "Fills (each partial or full execution is one trade)", ["bot", "side", "zone"]
)
FILL_SHARES = Counter("pets_fill_shares_total", "Shares filled", ["bot", "side", "zone"])
FILL_NOTIONAL = Counter(
    "pets_fill_notional_dollars_total", "Dollars traded (price x shares)", ["bot", "side", "zone"]
)
FEES = Counter("pets_fees_dollars_total", "Fees paid on fills", ["bot"])
REBATES = Counter("pets_rebates_dollars_total", "Maker rebates received on fills", ["bot"])
FILL_RATIO = Gauge(
    "pets_fill_ratio", "Shares filled / shares ordered, over the orders that are done", ["bot"]
)
SLIPPAGE = Histogram(
    "pets_fill_slippage_ratio",
    "Fill price against the order's price as a fraction of it (positive: worse for us)",
    ["bot"],
    buckets=SLIPPAGE_BUCKETS,
)
EQUITY = Gauge("pets_equity_dollars", "Equity (cash + positions at mid)", ["bot"])
REALIZED = Gauge("pets_realized_pnl_dollars", "Realized P&L", ["bot"])
UNREALIZED = Gauge("pets_unrealized_pnl_dollars", "Unrealized P&L of open positions at mid", ["bot"])
EXPOSURE = Gauge("pets_exposure_dollars", "Open position value", ["bot"])
OPEN_ORDERS = Gauge("pets_open_orders", "Orders resting at the venue or the paper exchange", ["bot"])
WIN_RATIO = Gauge("pets_win_ratio", "Round trips won / round trips closed", ["bot"])
DRAWDOWN = Gauge(
    "pets_drawdown_ratio", "Current fall from the equity peak, as a fraction of the peak", ["bot"]
)
MAX_DRAWDOWN = Gauge("pets_max_drawdown_ratio", "Largest fall from an equity peak so far", ["bot"])
CONSECUTIVE_LOSSES = Gauge(
    "pets_consecutive_losses", "Losing round trips in a row (risk's breaker count)", ["bot"]
)
BREAKERS = Counter(
    "pets_circuit_breaker_triggers_total", "Circuit breakers and halts that tripped", ["bot", "kind"]
)
ALERTS = Counter("pets_risk_alerts_total", "Risk alerts published", ["kind", "severity"])
FRAME_TO_ORDER = Histogram(
    "pets_frame_to_order_latency_seconds",
    "Venue time of the frame behind an intent -> its approval on the execution topic",
    buckets=LATENCY_BUCKETS,
)

# every flow
PRODUCED = Counter("pets_messages_produced_total", "Messages a flow produced, by topic", ["topic"])
DEAD_LETTERS = Counter("pets_dead_letters_total", "Inputs refused to a dead-letter topic", ["topic"])
CONSUMER_LAG = Gauge("pets_consumer_lag_messages", "Messages on a topic the flow has not read yet", ["topic"])

# market data
MESSAGE_LATENCY = Histogram(
    "pets_market_message_latency_seconds",
    "Venue timestamp of a book update -> its top of book published (sampled once per output batch)",
    buckets=LATENCY_BUCKETS,
)
LAST_MESSAGE = Gauge("pets_market_last_message_timestamp_seconds", "Venue time of the latest book update")
MESSAGE_AGE = Gauge(
    "pets_market_message_age_seconds", "Wall clock minus the venue time of the latest book update"
)
TOPS = Counter("pets_market_tops_total", "Tops of book published")

# clients of the outside world (the control API's pets_api_request_duration_seconds is pets.api.app's)
LLM_DURATION = Histogram(
    "pets_llm_request_duration_seconds", "LLM requests", ["model"], buckets=REQUEST_BUCKETS
)
LLM_ERRORS = Counter("pets_llm_request_errors_total", "LLM requests that failed", ["model"])
RPC_DURATION = Histogram(
    "pets_rpc_request_duration_seconds", "Polygon JSON-RPC requests", ["method"], buckets=REQUEST_BUCKETS
)
RPC_ERRORS = Counter("pets_rpc_request_errors_total", "Polygon JSON-RPC requests that failed", ["method"])
ALERTS_SENT = Counter("pets_alerts_sent_total", "Notifications delivered", ["channel", "type"])
ALERTS_FAILED = Counter(
    "pets_alerts_failed_total", "Notifications given up after retries", ["channel", "type"]
)


_last_venue_s: list[float] = []  # the venue time (s) of the latest top of book; empty before the first


def _age() -> float:
    return time.time() - _last_venue_s[0] if _last_venue_s else 0.0


MESSAGE_AGE.set_function(_age)


def observe_tops(tops: Sequence[TopOfBook]) -> None:
    """md.tob going out of market_state: counted, and the batch's newest update timed (one histogram
    observation per batch keeps the hot path at one call per batch, not per item)."""
    if not tops:
        return
    TOPS.inc(len(tops))
    venue_s = max(top.ts_ms for top in tops) / 1000
    MESSAGE_LATENCY.observe(max(time.time() - venue_s, 0.0))
    LAST_MESSAGE.set(venue_s)
    _last_venue_s[:] = [venue_s]


def observe_dead_letters(topic: str) -> Callable[[Sequence[DeadLetter]], None]:
    def observe(letters: Sequence[DeadLetter]) -> None:
        if letters:
            child(DEAD_LETTERS, topic).inc(len(letters))

    return observe


_children: dict[tuple[Any, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, cached: prometheus_client validates and locks on every call (~1 us a
    lookup, twice per published message); the labels are bounded (bots, sides, zones, rules, topics)."""
    key = (metric, labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def zone_label(price: Decimal, zones: Sequence[Zone]) -> str:
    zone = zone_for(price, zones)
    return str(zone.zone) if zone is not None else "none"


class TradingObserver:
    """Turns the messages a flow publishes (`Routed`: topic, key, message) into metric updates."""

    def __init__(self, zones: Sequence[Zone]) -> None:
        self.zones = zones
        self.ordered: dict[str, Decimal] = {}  # bot -> shares of its finished orders
        self.filled: dict[str, Decimal] = {}  # bot -> shares filled of them
        self.peaks: dict[str, Decimal] = {}  # bot -> equity peak seen by this process

    def __call__(self, items: Iterable[Any]) -> None:
        for item in items:
            child(PRODUCED, item.topic).inc()
            message = item.message
            kind = type(message)
            if kind is ExecutionReport:
                self.report(message)
            elif kind is PnlSnapshot:
                self.pnl(message)
            elif kind is ApprovedOrder:
                child(ORDERS, message.intent.bot_id, "approved").inc()
                FRAME_TO_ORDER.observe(max(time.time() - message.intent.source_ts_ms / 1000, 0.0))
            elif kind is OrderDenied:
                child(ORDERS, message.intent.bot_id, "denied").inc()
                child(DENIALS, message.intent.bot_id, message.rule).inc()
            elif kind is OrderIntent:
                child(INTENTS, message.bot_id, message.side).inc()
            elif kind is RiskAlert:
                child(ALERTS, message.kind, message.severity).inc()
                if message.kind in BREAKER_KINDS:
                    child(BREAKERS, message.bot_id, message.kind).inc()
            elif kind is DeadLetter:
                child(DEAD_LETTERS, item.topic).inc()

    def report(self, report: ExecutionReport) -> None:
        bot = report.bot_id
        child(ORDERS, bot, report.kind).inc()
        if report.last_qty > 0 and report.last_px is not None:
            zone = zone_label(report.last_px, self.zones)
            child(TRADES, bot, report.side, zone).inc()
            child(FILL_SHARES, bot, report.side, zone).inc(float(report.last_qty))
            child(FILL_NOTIONAL, bot, report.side, zone).inc(float(report.last_qty * report.last_px))
            child(FEES, bot).inc(float(report.fee))
            child(REBATES, bot).inc(float(report.rebate))
            if report.order_price > 0:
                worse = (
                    report.last_px - report.order_price
                    if report.side == "BUY"
                    else report.order_price - report.last_px
                )
                child(SLIPPAGE, bot).observe(float(worse / report.order_price))
        if report.final and report.order_size > 0:
            ordered = self.ordered[bot] = self.ordered.get(bot, ZERO) + report.order_size
            filled = self.filled[bot] = self.filled.get(bot, ZERO) + report.cum_qty
            child(FILL_RATIO, bot).set(float(filled / ordered))

    def pnl(self, snap: PnlSnapshot) -> None:
        bot = snap.bot_id
        child(EQUITY, bot).set(float(snap.equity))
        child(REALIZED, bot).set(float(snap.realized_pnl))
        child(UNREALIZED, bot).set(float(snap.unrealized_pnl))
        child(EXPOSURE, bot).set(float(snap.exposure))
        child(OPEN_ORDERS, bot).set(snap.open_orders)
        closed = snap.wins + snap.losses
        child(WIN_RATIO, bot).set(snap.wins / closed if closed else 0.0)
        child(MAX_DRAWDOWN, bot).set(float(snap.max_drawdown))
        peak = self.peaks.get(bot, snap.equity)
        self.peaks[bot], current = drawdown_after(peak, ZERO, snap.equity)
        child(DRAWDOWN, bot).set(float(current))


def consumer_lag_from_stats(stats_json: str) -> None:
    """librdkafka's statistics callback: per topic, the messages between what the flow read and the
    partitions' high watermarks (no consumer group: offsets live in Bytewax's recovery store, so the
    lag is hi_offset - app_offset, not librdkafka's committed-offset consumer_lag)."""
    stats = json.loads(stats_json)
    for topic, info in stats.get("topics", {}).items():
        lag = 0
        for partition, part in info.get("partitions", {}).items():
            high, read = part.get("hi_offset", -1), part.get("app_offset", -1)
            if partition != "-1" and high >= 0:
                lag += high - max(read, part.get("lo_offset", 0), 0)
        child(CONSUMER_LAG, topic).set(lag)


class ChannelStatsCollector(Collector):
    """The market WebSocket's own counters (pipelines/polymarket/market_ws.ChannelStats), read at
    scrape time: nothing is added to the socket's hot path."""

    def __init__(self) -> None:
        self.stats: Any = None

    def collect(self) -> Iterator[CounterMetricFamily]:
        stats = self.stats
        if stats is None:
            return
        for name, value, doc in (
            ("pets_market_ws_messages", stats.messages, "Market-channel messages received"),
            ("pets_market_ws_connects", stats.connects, "Market-channel connections opened"),
            ("pets_market_ws_reconnects", stats.reconnects, "Market-channel reconnections"),
            ("pets_market_ws_gaps", stats.gaps, "Market-channel disconnects and stalls (continuity lost)"),
            ("pets_market_ws_resyncs", stats.resyncs, "Books resynced from REST after a gap"),
        ):
            yield CounterMetricFamily(name, doc, value=value)


_CHANNEL = ChannelStatsCollector()
REGISTRY.register(_CHANNEL)


def watch_channel(stats: Any) -> None:
    """Serve this market channel's counters (the latest channel of the process)."""
    _CHANNEL.stats = stats


def observe_llm(model: str, seconds: float, failed: bool) -> None:
    child(LLM_DURATION, model).observe(seconds)
    if failed:
        child(LLM_ERRORS, model).inc()


def observe_rpc(method: str, seconds: float, failed: bool) -> None:
    child(RPC_DURATION, method).observe(seconds)
    if failed:
        child(RPC_ERRORS, method).inc()
