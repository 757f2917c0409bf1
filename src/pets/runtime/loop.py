"""The trading loop: every flow of PETS in one process on the embedded bus.

    md.book frame -> parse -> market state (the pure books) -> md.tob
    md.tob        -> paper exchange (resting orders vs the new book) -> marks -> risk -> bots -> order.intent
    order.intent  -> RiskEngine.on_intent -> order.exec | order.denied      (nothing else reaches order.exec)
    order.exec    -> PaperExchange.on_order -> exec.report
    exec.report   -> portfolio, risk, the owning bot (-> more intents), journal
    bot.control   -> risk (halts -> an approved cancel_all on order.exec) and the bots
    md.markets    -> risk, portfolio (settlement), paper exchange, bots
    signal.*      -> SignalGate (new, unexpired, fresh book) -> the bots that read the source
                     (dropped signals -> dlq.signals, counted in `stats.signals`)
    chain.fill, whale.rankings, features.news -> the bots that read them (`data_topics`)
    news.item     -> NewsSignaller (the news flow's: match, forecast, attention; md.markets, the mids
                     of md.tob and the trades of md.book feed it) -> features.news, signal.news

The classes are the ones the Kafka flows run (MarketStateEngine, the bot instances of
`BotInstances`, routed as the bots flow routes them, RiskEngine, PaperExchange, Portfolio), and the
rules too (`same_top`), so a run here decides exactly what the flows would on
the same input order (docs/running.md). The clock is the venue time of the frames: a run is
deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, cast

from msgspec.structs import replace

from pets.bots.base import Bot
from pets.bots.registry import STRATEGY_CLASSES
from pets.bots.routing import DATA_TOPICS, BotInstances
from pets.execution.metrics import BotReport, Markouts, build_report, with_forecasts
from pets.execution.paper_exchange import PaperConfig, PaperExchange
from pets.execution.portfolio import Portfolio, resolved_market
from pets.pipelines.market_data.market import MarketStateEngine
from pets.pipelines.market_data.parser import FrameParser, event_venue_ms
from pets.pipelines.news.forecaster import BaselineForecaster
from pets.pipelines.news.signals import NewsSignaller
from pets.pipelines.simulator import AltData
from pets.risk.engine import RiskEngine
from pets.runtime.bus import EmbeddedBus
from pets.runtime.journal import Journal
from pets.schemas.config import PetsConfig
from pets.schemas.control import ControlCommand, DeadLetter, RiskAlert
from pets.schemas.market_data import LastTradePrice, MarketInfo, MarketResolved, TopOfBook, mark_of, shows
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderDenied, OrderIntent
from pets.schemas.signals import NewsItem, Signal, WalletFill, WhaleRanking

NS_PER_MS: Final = 1_000_000
BOOK_EVENTS: Final = frozenset({"Snapshot", "LevelDeltas", "TickSizeSet"})
SHOWN_BID: Final = 0  # where `shows` puts a top's best bid, best ask and mid
SHOWN_ASK: Final = 1
SHOWN_MID: Final = 4
# where the risk engine's outputs go (anything else is an alert)
RISK_TOPICS: Final[dict[type, str]] = {ApprovedOrder: "order.exec", OrderDenied: "order.denied"}


class LastTop:
    """What a token's last top that reached risk and the bots showed (`shows`) and its time (`same_top`),
    and the venue time from which a top of it showing the same mid matters to the news signaller:
    updated in place per top (a compiled class: no tuple to build, no dict entry to replace)."""

    def __init__(self, values: tuple[object, ...], ts_ms: int) -> None:
        self.values = values
        self.ts_ms = ts_ms
        self.news_from_ms = 0


@dataclass(slots=True)
class RunStats:
    frames: int = 0
    events: int = 0
    dead_letters: int = 0
    dead_reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    topics: dict[str, int] = field(default_factory=dict)
    first_ms: int = 0
    last_ms: int = 0
    signals: dict[str, int] = field(default_factory=dict)  # the SignalGate's counts (passed, expired, ...)


class TradingLoop:
    def __init__(
        self,
        config: PetsConfig,
        markets: Iterable[MarketInfo],
        *,
        journal: Journal | None = None,
        paper: PaperConfig | None = None,
        classes: Mapping[str, type[Bot]] = STRATEGY_CLASSES,
        news: NewsSignaller | None = None,
        routing: type[BotInstances] = BotInstances,
    ) -> None:
        self.config = config
        self.journal = journal
        trading = config.system.trading
        self.allocations = {bot.id: bot.capital_allocation * trading.starting_capital for bot in config.bots}
        infos = list(markets)
        self.infos: dict[str, MarketInfo] = {}
        self.bus = EmbeddedBus()
        self.parser = FrameParser("run.parse")
        self.market_state = MarketStateEngine(infos)
        # one instance per bot and routing key, as in the bots flow (client order ids, clocks, timers)
        self.instances = routing(config, classes)  # (a compiled loop calls its own BotInstances directly)
        # news items (the simulator's) -> features.news and signal.news, only when some bot reads them;
        # by default the baseline forecaster, matching at the simulator's scale (AltData)
        readers = self.instances.readers
        if news is None and ("news" in readers or "features.news" in readers):
            news = NewsSignaller(BaselineForecaster(), threshold=AltData.MATCH_THRESHOLD,
                                 full_score=AltData.FULL_SCORE)  # fmt: skip
        self.news = news
        self.llm_cost: dict[str, Decimal] = {}  # bot id -> its share of the forecasts' cost
        # asset -> what its last top that reached risk and the bots showed, and its time (`same_top`)
        self._last_top: dict[str, LastTop] = {}
        self.risk = RiskEngine(config)
        self.portfolio = Portfolio(trading.starting_capital, self.allocations)
        self.markouts = Markouts()
        self.exchange = PaperExchange(
            paper or PaperConfig.from_config(config), self.market_state, self.portfolio
        )
        self.stats = RunStats()
        self.clock_ms = 0
        run = config.system.run
        self.snapshot_interval_ms = run.snapshot_interval_ms
        self.timer_interval_ms = run.timer_interval_ms
        self._next_snapshot_ms = 0
        self._next_timer_ms = 0
        self._last_snapshot_ns = 0
        self._tobs: list[TopOfBook] = []
        bus = self.bus
        bus.subscribe("md.markets", self._on_market)
        bus.subscribe("md.tob", self._on_top_of_book)
        bus.subscribe("order.intent", self._on_intent)
        bus.subscribe("order.exec", self._on_approved)
        bus.subscribe("order.denied", self._on_denied)
        bus.subscribe("exec.report", self._on_report)
        bus.subscribe("bot.control", self._on_control)
        bus.subscribe("risk.alert", self._on_alert)
        for topic in self.instances.readers:  # signal sources and data topics some bot reads
            bus.subscribe(topic if topic in DATA_TOPICS.values() else f"signal.{topic}", self._to_bots)
        for info in infos:
            bus.publish("md.markets", info)
        bus.drain()

    # ------------------------------------------------------------------ input

    def run(self, frames: Iterable[bytes | Signal | NewsItem | WalletFill | WhaleRanking]) -> RunStats:
        """Carry every frame (and every signal among them, in order) through all flows, then flush
        and take the final snapshot."""
        started = time.perf_counter()
        on_frame = self.on_frame
        for raw in frames:
            if type(raw) is bytes:
                on_frame(raw)
            elif type(raw) is Signal:
                self.signal(raw)  # type: ignore[arg-type]
            elif type(raw) is NewsItem:
                self.news_item(raw)  # type: ignore[arg-type]
            else:
                self.alt_data(raw)  # type: ignore[arg-type]
        self.finish()
        self.stats.seconds = time.perf_counter() - started
        return self.stats

    def on_frame(self, raw: bytes) -> None:
        stats = self.stats
        stats.frames += 1
        tobs = self._tobs
        on_event = self.market_state.on_event
        news = self.news
        for event in self.parser.parse(raw):
            kind = type(event)
            if kind is DeadLetter:
                self.dead_letter(event)  # type: ignore[arg-type]
                continue
            if kind is LastTradePrice and news is not None:
                news.on_trade(event)  # type: ignore[arg-type]
            stats.events += 1
            ts = getattr(event, "ts_ms", None) or event_venue_ms(event)
            if ts is not None and ts > self.clock_ms:
                self._advance(ts)
            if kind is MarketResolved:
                self._on_resolved(event)  # type: ignore[arg-type]
                continue
            reason = on_event(event, tobs)  # type: ignore[arg-type]
            if reason is not None:
                ts_ns = self.clock_ms * NS_PER_MS
                self.dead_letter(DeadLetter.from_bytes("run.book", reason, raw, ts_ns=ts_ns))
        if tobs:
            self._tobs = []
        bus = self.bus
        bus.dispatch("md.tob", tobs)

    def signal(self, signal: Signal) -> None:
        """A signal, published on its topic (signal.<source>) as the signal flows would."""
        self.bus.publish(signal.topic, signal)
        self.bus.drain()

    def news_item(self, item: NewsItem) -> None:
        """A news item, through the news flow's code: its attention features on features.news, then
        its signals on signal.news."""
        news = self.news
        if news is None:
            return
        before = news.forecaster.total_cost_usd()
        signals, features = news.process(item)
        cost = news.forecaster.total_cost_usd() - before
        readers = self.instances.readers.get("news", [])
        if cost and readers:  # the forecasts serve every bot that reads signal.news: an equal share each
            for bot_id in readers:
                self.llm_cost[bot_id] = self.llm_cost.get(bot_id, Decimal(0)) + cost / len(readers)
        bus = self.bus
        for feature in features:
            bus.publish("features.news", feature)
        for signal in signals:
            bus.publish("signal.news", signal)
        bus.drain()

    def alt_data(self, item: WalletFill | WhaleRanking) -> None:
        """A whale fill or ranking row, published on chain.fill / whale.rankings."""
        self.bus.publish("chain.fill" if type(item) is WalletFill else "whale.rankings", item)
        self.bus.drain()

    def control(self, cmd: ControlCommand) -> None:
        """An operator command, as `pets bot ...` / `pets halt` would send it on bot.control."""
        self.bus.publish("bot.control", cmd)
        self.bus.drain()

    def finish(self) -> None:
        tobs: list[TopOfBook] = []
        self.market_state.flush(tobs)
        self.bus.dispatch("md.tob", tobs)
        self._snapshot()
        self.stats.topics = dict(self.bus.published)
        counts: dict[str, int] = {}
        for gate in self.instances.gates():
            for reason, n in gate.counts.items():
                counts[reason] = counts.get(reason, 0) + n
        if counts:
            self.stats.signals = counts

    # ------------------------------------------------------------------ results

    def report(self) -> dict[str, BotReport]:
        journal = self.journal
        assert journal is not None, "the report is built from the journal"
        report = build_report(
            list(self.instances.configs),
            self.allocations,
            self.config.system.trading.starting_capital,
            journal.pnl,
            [(d.intent.bot_id, d.rule) for d in journal.denials],
            journal.alerts,
            self.markouts.bots,
        )
        forecaster = {i.client_order_id: i.cause.model_version for i in journal.intents
                      if i.cause is not None and i.cause.model_version}  # fmt: skip
        fills = [(f.bot_id, f.client_order_id) for f in journal.fills]
        return with_forecasts(report, forecaster, fills, self.llm_cost)

    # ------------------------------------------------------------------ handlers

    @property
    def bots(self) -> list[Bot]:
        """Every bot instance so far (one per bot and routing key)."""
        return list(self.instances)

    def _advance(self, now_ms: int) -> None:
        """Venue time moved (an event of a frame, before it applies): a P&L snapshot when one is due,
        then GTD expiry when due, by the executor flow's rules (ExecutorState.advance; docs/running.md).
        A bot instance's timers follow the venue time of the events it is handed, not this clock."""
        if self.stats.first_ms == 0:
            self.stats.first_ms = now_ms
        self.clock_ms = self.stats.last_ms = now_ms
        if now_ms >= self._next_snapshot_ms:
            self._snapshot()
        if now_ms >= self._next_timer_ms:
            self._next_timer_ms = now_ms + self.timer_interval_ms
            self.bus.publish_all("exec.report", self.exchange.on_timer(now_ms))

    def _snapshot(self) -> None:
        """P&L snapshots now; each at its own timestamp (the database keys them by (bot, ts)); the
        next one is due a snapshot interval later."""
        self._next_snapshot_ms = self.clock_ms + self.snapshot_interval_ms
        ts_ns = self._last_snapshot_ns = max(self.clock_ms * NS_PER_MS, self._last_snapshot_ns + 1_000)
        snapshots = self.portfolio.snapshot(ts_ns, self.exchange.open_orders())
        if self.journal is not None:
            self.journal.pnl += snapshots

    def dead_letter(self, letter: DeadLetter) -> None:
        """Count a refused input by reason, and keep it in the journal."""
        stats = self.stats
        stats.dead_letters += 1
        key = letter.reason[:80]
        stats.dead_reasons[key] = stats.dead_reasons.get(key, 0) + 1
        if self.journal is not None:  # stamped with venue time: the same input, the same journal
            self.journal.dead_letters.append(replace(letter, ts_ns=self.clock_ms * NS_PER_MS))

    def _on_resolved(self, event: MarketResolved) -> None:
        known = self.infos.get(event.market) or (self.infos.get(event.id) if event.id else None)
        self.resolve(resolved_market(event, known))

    def resolve(self, info: MarketInfo) -> None:
        """A market resolved (market_resolved frame, or Gamma state at the end of a replay): its open
        orders are cancelled, then every flow learns the final state (settlement at 1/0)."""
        self.bus.publish_all(
            "exec.report", self.exchange.on_market_resolved(info.condition_id, self.clock_ms)
        )
        self.bus.publish("md.markets", info)
        self.bus.drain()

    def _on_market(self, info: MarketInfo) -> None:
        self.infos[info.condition_id] = info
        self.infos[info.market_id] = info
        if self.journal is not None:
            self.journal.markets[info.condition_id] = info
        self.exchange.set_market(info.condition_id, info.category, info.fee_rate)
        self._route_risk(self.risk.on_market(info))
        if self.news is not None:
            self.news.on_market(info)
        changed = self.portfolio.on_market(info, self.clock_ms * NS_PER_MS)
        if changed:  # a settlement: a snapshot, as the executor flow takes
            if self.journal is not None:
                self.journal.position_history += changed
            self._snapshot()
        self._to_bots(info)

    def _on_top_of_book(self, tob: TopOfBook) -> None:
        """The hot path (one call per top of book): most updates change nothing for anyone.

        A top that shows what the asset's previous one showed (a new seq/ts only: the frame changed
        levels deeper than the features look) reaches the paper exchange but not risk or the bots:
        nothing they read changed. Risk's staleness check compares an intent's pricing time with its
        newest top, so an older kept top can only make a book look younger, never stale."""
        asset_id = tob.asset_id
        if asset_id in self.exchange.by_asset:
            self.bus.publish_all("exec.report", self.exchange.on_book_update(asset_id, tob.ts_ms))
        values, ts_ms = shows(tob), tob.ts_ms
        last = self._last_top.get(asset_id)
        if last is not None and ts_ms >= last.ts_ms and last.values == values:
            return  # `same_top` (its rule on what the last top showed, kept): risk and the bots ignore it
        # `mark_price` from what the top shows (a TopOfBook field is a generic attribute read compiled)
        mid = cast("Decimal | None", values[SHOWN_MID])
        bid, ask = cast("Decimal | None", values[SHOWN_BID]), cast("Decimal | None", values[SHOWN_ASK])
        if last is None:
            last = self._last_top[asset_id] = LastTop(values, ts_ms)
            changed = True
        else:
            changed = last.values[SHOWN_MID] is not mid
            last.values, last.ts_ms = values, ts_ms
        marks = self.portfolio.marks
        mark = mark_of(mid, bid, ask, marks.get(asset_id))
        if mark is not None:
            if asset_id in self.markouts.pending:
                self.markouts.on_mid(asset_id, ts_ms, marks.get(asset_id), mark)
            marks[asset_id] = mark
            # (a top without a mid changes nothing for the news signaller; one showing the mid the last
            # top showed, which the signaller holds, only once the token's mid history would forget
            # something: `on_mid`)
            news = self.news
            if news is not None and mid is not None and (changed or ts_ms >= last.news_from_ms):
                last.news_from_ms = news.on_mid(asset_id, ts_ms, mid, changed)
        outputs = self.risk.on_top_of_book(tob)
        if outputs:
            self._route_risk(outputs)
        intents, dropped = self.instances.on_top_of_book(tob, asset_id, ts_ms)
        if intents:
            self.bus.publish_all("order.intent", intents)
        if dropped:
            self.bus.publish_all("dlq.signals", dropped)

    def _to_bots(self, event: Any) -> None:
        """An event for the bots, routed to their instances as in the bots flow."""
        intents, dropped = self.instances.on_event(event)
        self.bus.publish_all("order.intent", intents)
        self.bus.publish_all("dlq.signals", dropped)

    def _on_intent(self, intent: OrderIntent) -> None:
        if self.journal is not None:
            self.journal.intents.append(intent)
        # no verdict while a basket waits for its other legs, then every leg's verdict at once
        self._route_risk(self.risk.on_intent(intent, intent.source_ts_ms * NS_PER_MS))  # as the risk flow

    def _on_approved(self, approved: ApprovedOrder) -> None:
        if self.journal is not None:
            self.journal.approved.append(approved)
        intent = approved.intent
        if intent.action in ("place", "replace"):
            self.markouts.on_order(intent.client_order_id, self.portfolio.marks.get(intent.asset_id))
        self.bus.publish_all("exec.report", self.exchange.on_order(approved, self.clock_ms))

    def _on_denied(self, denied: OrderDenied) -> None:
        if self.journal is not None:
            self.journal.denials.append(denied)
        self._to_bots(denied)

    def _on_report(self, report: ExecutionReport) -> None:
        position = self.portfolio.on_report(report)
        if position is not None or report.last_qty <= 0:  # a fill is applied once
            self.markouts.on_report(report, self.clock_ms, self.portfolio.marks.get(report.asset_id))
        if self.journal is not None:
            self.journal.reports.append(report)
            if position is not None:
                self.journal.position_history.append(position)
        self._route_risk(self.risk.on_execution_report(report))
        self._to_bots(report)

    def _on_control(self, cmd: ControlCommand) -> None:
        self._route_risk(self.risk.on_control(cmd))
        self._to_bots(cmd)

    def _on_alert(self, alert: RiskAlert) -> None:
        if self.journal is not None:
            self.journal.alerts.append(alert)

    def _route_risk(self, outputs: list[Any]) -> None:
        """The risk engine's outputs: verdicts, alerts, the cancel-alls of its breakers and halts."""
        for output in outputs:
            self.bus.publish(RISK_TOPICS.get(type(output), "risk.alert"), output)
