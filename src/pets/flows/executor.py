"""executor: order.exec (approved orders) -> the paper exchange -> exec.report, positions, P&L.

    executor_in (order.exec + md.book + md.markets + bot.control) -> decode -> key_market
        -> executor_markets (key: market) -> exec.report (ExecutionReport, key market) | rows
           execution_reports, positions, position_history | notes for the portfolio key
        -> executor_portfolio (key "portfolio") -> pnl.snapshot (PnlSnapshot, key bot_id) | rows
           pnl_snapshots | risk.alert (halt acknowledged)
    halt * on bot.control, risk's cancel-all of every market -> directory -> every market key
    undecodable input -> dlq.trading (with the reason)

Each market key follows md.book itself (parse -> MarketStateEngine, the same pure books as the
market_state flow: the paper exchange walks the depth of the book, not only its top) and holds that
market's paper orders and token holdings: fills and a sell's cover are exact within the key. Cash,
equity and P&L are exact in one place, the portfolio key, fed by the market keys' reports, marks,
resolutions and venue time (as risk keeps one global key); risk is the exact gate for a buy's cash
before the order reaches order.exec, so the market keys keep no cash check (docs/execution.md). Only
the risk flow writes order.exec, so nothing is executed that risk did not approve; an approved
`cancel_all` cancels open orders and reports each cancel at once. A `halt *` on bot.control does the
same in every market key without waiting for risk (a halt must work with the risk flow down); the
portfolio key acknowledges it on risk.alert for `pets halt` with the total cancelled. One code path
for one worker and a cluster (docs/deploy.md).

Live (`pets flow run executor --live`, one worker: see pets.execution.live for the opt-in): every
market is in one key (STATE_KEY: one venue account), approved orders go to the venue through
LiveExchange instead of the paper exchange (consecutive places of one batch in POST /orders
batches), a second input `executor_user_in` follows the authenticated user channel
(pets.pipelines.polymarket.user_ws) whose order/trade events become the reports (fills, acks,
cancels; a FAILED trade after MATCHED goes to risk.alert), and a heartbeat is posted every
`heartbeat_s` seconds of wall clock (the venue's dead-man switch). Before the flow is built the
venue version and the collateral balance/allowance are checked; anything missing refuses to start.

Restart: Bytewax restores each key's state from its recovery store and replays the input since the
last snapshot; report ids and timestamps are deterministic (venue time), so re-emitted reports carry
the same ids and the database ignores rows it has. The user channel replays nothing, so live its
source keeps the venue time of the last event it handed on in the same snapshot, and a resumed source
starts the channel as after a gap: right after subscribing it reads the trades since shortly before
that time and the open orders over REST, so fills and cancels made while the executor was down are
counted (once: a (trade, order) pair is counted once) and orders the venue no longer lists are
reported cancelled. Without a recovery state (a new recovery store, `--no-recovery`), each market key
rebuilds its holdings and the portfolio key the cash from the execution_reports in the database, and
the orders those reports left open are reported cancelled (their queue positions are lost); live,
every open order at the venue is cancelled first (DELETE /cancel-all), so that report is true.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, TypeGuard, TypeVar

import msgspec
from bytewax import operators as op
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, Source, StatefulSourcePartition
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from pets.execution.live import (
    LiveExchange,
    LiveRefusedError,
    clob_client,
    live_environment,
    preflight,
    require_live,
)
from pets.execution.paper_exchange import PaperConfig, PaperExchange
from pets.execution.portfolio import ZERO, Portfolio, resolved_market
from pets.flows.recovery import freeze, stateful_flat_map, thaw
from pets.flows.timescale_sink import DbRow, TimescaleSink
from pets.flows.trading_io import (
    ClockCheck,
    Routed,
    RoutedKafkaSink,
    TopicDecoder,
    kafka_source,
    log_dead_letter,
    order_log,
)
from pets.pipelines import records
from pets.pipelines.market_data.market import MarketStateEngine
from pets.pipelines.market_data.parser import BookEvent, FrameParser, event_venue_ms
from pets.pipelines.polymarket.user_ws import UserChannel, UserMessage, UserWsConfig, event_ms
from pets.schemas.config import PetsConfig, load_config
from pets.schemas.control import ALL_BOTS, EXECUTOR_HALT_RULE, ControlCommand, DeadLetter, RiskAlert
from pets.schemas.market_data import MarketInfo, MarketResolved, TopOfBook, mark_price
from pets.schemas.orders import ApprovedOrder, ExecutionReport, Position
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings, project_root

FLOW_NAME = "executor"
SOURCE = "executor.decode"
STATE_KEY = "executor"  # live: the one key of every market (one venue account)
PORTFOLIO_KEY = "portfolio"
DIRECTORY_KEY = "directory"
INPUT_TOPICS = ("order.exec", "md.book", "md.markets", "bot.control")
LIVE_ONE_WORKER_REASON = (
    "executor --live runs on one worker: one venue account, one heartbeat dead-man switch and one "
    "user channel (docs/deploy.md)"
)
NS_PER_MS = 1_000_000
HEARTBEAT_S = 5.0  # the venue cancels everything when heartbeats stop for about 10 s
# An approval for a token whose first book frame has not reached this key yet waits for it this long
# (wall clock): md.book and order.exec are separate topics, and a consumer starting or catching up can
# fetch one before the other (flows.kafka_source); risk only approves what a bot priced off a book.
BOOK_WAIT_S = 5.0
USER_PARTITION = "user"
RESTART_REASON = "executor restarted without its state: the paper order's queue position is lost"
LIVE_RESTART_REASON = "executor restarted without its state: every open order was cancelled at the venue"

log = logging.getLogger(__name__)
V = TypeVar("V")


class Input(NamedTuple):
    """One decoded input: which topic (logical name) and the message (md.book: the frame's bytes, or
    its parsed events of one market once the flow's clock check has passed them). Broadcasts fanned
    out by the directory name their key: "halt" (ControlCommand, key), "cancel_all" (ApprovedOrder,
    key); "seen" (key) tells the directory of a key."""

    topic: str
    message: Any


class Note(NamedTuple):
    """What a market key tells the portfolio key: "tick" (venue ms), "report", "mark" (asset, mid),
    "market" (MarketInfo), "halted" (command id, orders cancelled), "halt_expected" (command id, keys)."""

    kind: str
    value: Any


class Output(NamedTuple):
    """A message for Kafka (exec.report, pnl.snapshot, risk.alert), a database row, or a note for the
    portfolio key."""

    routed: Routed | None = None
    row: DbRow | None = None
    note: Note | None = None

    @property
    def report(self) -> ExecutionReport | None:
        return self.routed.message if self.routed is not None and self.routed.topic == "exec.report" else None


class TokenWallet:
    """A market key's side of the wallet: the tokens held (a sell is covered exactly within the key).
    No cash: risk's one global ledger is the exact gate for a buy's cash (docs/execution.md)."""

    def __init__(self, holdings: Portfolio) -> None:
        self.holdings = holdings

    def free_cash(self) -> Decimal | None:
        return None

    def token_balance(self, bot_id: str, asset_id: str) -> Decimal:
        return self.holdings.token_balance(bot_id, asset_id)


class ExecutorState:
    """One key's books + paper exchange + token holdings (picklable): a market's, or live every
    market's (key STATE_KEY). Cash, equity and P&L are the portfolio key's (PortfolioState)."""

    def __init__(self, config: PetsConfig) -> None:
        self.books = MarketStateEngine()
        # positions and token balances only: its cash figures are not the wallet's
        self.portfolio = Portfolio(ZERO, {})
        self.exchange = PaperExchange(
            PaperConfig.from_config(config), self.books, TokenWallet(self.portfolio)
        )
        self.parser = FrameParser("executor.book")
        self.markets: dict[str, MarketInfo] = {}
        self.clock_ms = 0
        self.next_timer_ms = 0
        self.timer_interval_ms = config.system.run.timer_interval_ms
        self.live: LiveExchange | None = None  # set in live mode: orders go to the venue, not the paper
        # paper: approvals waiting for their token's first book, in order, each with its deadline
        # (wall clock, s); once one waits, the key's later approvals queue behind it
        self.waiting: deque[tuple[ApprovedOrder, float]] = deque()

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("waiting", deque())  # a snapshot from before approvals could wait
        self.__dict__.update(state)

    def reconcile(self, reports: Iterable[ExecutionReport]) -> None:
        """Rebuild the holdings from stored reports (the portfolio key reports the open orders
        cancelled: PortfolioState.reconcile)."""
        for report in reports:
            self.portfolio.on_report(report)
            self.clock_ms = max(self.clock_ms, report.ts_ns // NS_PER_MS)
            self.exchange.seen.add(report.client_order_id)

    def on_inputs(self, items: list[Input]) -> list[Output]:
        """A batch of inputs in order; live, consecutive approvals go to the venue together (batch post)."""
        out: list[Output] = []
        run: list[ApprovedOrder] = []
        for item in items:
            if self.live is not None and item.topic == "order.exec":
                run.append(item.message)
                continue
            out += self._to_venue(run)
            run = []
            out += self.on_input(item)
        return out + self._to_venue(run)

    def _to_venue(self, approved: list[ApprovedOrder]) -> list[Output]:
        if not approved or self.live is None:
            return []
        self.clock_ms = max(self.clock_ms, *(a.intent.source_ts_ms for a in approved))
        return self._reported(self.live.on_orders(approved, self.clock_ms))

    def on_input(self, item: Input) -> list[Output]:
        if item.topic in ("halt", "cancel_all"):
            out = self.release(force=True)  # what waits is placed (or refused) before it is cancelled
            if item.topic == "halt":
                return out + self._on_halt(item.message[0])
            return out + self.on_input(Input("order.exec", item.message[0]))
        if self.live is not None and item.topic in ("order.exec", "user"):
            if item.topic == "order.exec":
                return self._to_venue([item.message])
            reports, alerts = self.live.on_user(item.message)
            return self._reported(reports) + _alerts(alerts)
        if item.topic == "order.exec":
            approved: ApprovedOrder = item.message
            if self.waiting or self._before_its_book(approved):
                self.waiting.append((approved, time.time() + BOOK_WAIT_S))
                return []
            return self._execute(approved)
        if item.topic == "md.markets":
            return self._on_market(item.message)
        out = self._on_frame(item.message)
        return out + self.release() if self.waiting else out

    def _execute(self, approved: ApprovedOrder) -> list[Output]:
        self.clock_ms = max(self.clock_ms, approved.intent.source_ts_ms)
        return self._reported(self.exchange.on_order(approved, self.clock_ms))

    def _before_its_book(self, approved: ApprovedOrder) -> bool:
        intent = approved.intent
        return intent.action in ("place", "replace") and self.books.book(intent.asset_id) is None

    def release(self, force: bool = False) -> list[Output]:
        """The waiting approvals whose book has come or whose wait is over (all with `force`), in
        order; one still waiting keeps the ones behind it waiting too."""
        out: list[Output] = []
        now = time.time()
        while self.waiting:
            approved, deadline = self.waiting[0]
            if not force and now < deadline and self._before_its_book(approved):
                break
            self.waiting.popleft()
            out += self._execute(approved)
        return out

    def wait_deadline(self) -> float | None:
        """When the first waiting approval stops waiting (wall clock, s), if any waits."""
        return self.waiting[0][1] if self.waiting else None

    def _on_halt(self, cmd: ControlCommand) -> list[Output]:
        """`pets halt` acts here too, not only through risk's cancel-all on order.exec: with the risk
        flow down a halt must still take every open order off the book (paper and live). The portfolio
        key acknowledges it once every key has said how many orders it cancelled."""
        if self.live is not None:
            reports = self.live.cancel_all()
        else:
            self.exchange.now_ms = max(self.exchange.now_ms, self.clock_ms)
            reports = self.exchange.cancel_all(ALL_BOTS, "*", halt_reason(cmd.command_id))
        return [*self._reported(reports), Output(note=Note("halted", (cmd.command_id, len(reports))))]

    def _on_frame(self, frame: bytes | list[BookEvent]) -> list[Output]:
        out: list[Output] = []
        tops: list[TopOfBook] = []
        for event in self.parser.parse(frame) if isinstance(frame, bytes) else frame:
            if type(event) is DeadLetter:
                continue  # the market_state flow dead-letters bad frames; here they only lack a book
            ts = getattr(event, "ts_ms", None) or event_venue_ms(event)
            if ts is not None and ts > self.clock_ms:
                out += self.advance(ts)
            if type(event) is MarketResolved:
                out += self._on_resolved(event)  # type: ignore[arg-type]
                continue
            self.books.on_event(event, tops)  # type: ignore[arg-type]
        return out + self._on_tops(tops)

    def advance(self, now_ms: int) -> list[Output]:
        """Venue time moved (an event of a frame, before it applies): the portfolio key hears of it
        (its P&L snapshots are due on this clock), then GTD expiry when due (every
        `run.timer_interval_ms`). `pets run` keeps the same cadences (TradingLoop._advance)."""
        self.clock_ms = now_ms
        out = [Output(note=Note("tick", now_ms))]
        if now_ms >= self.next_timer_ms:
            self.next_timer_ms = now_ms + self.timer_interval_ms
            out += self._reported(self.exchange.on_timer(now_ms))
        return out

    def flush(self) -> list[Output]:
        """End of input: the books' pending update group (a lone token's frame waits for its pair),
        then the approvals still waiting for a book."""
        tops: list[TopOfBook] = []
        self.books.flush(tops)
        return self._on_tops(tops) + self.release(force=True)

    def _on_tops(self, tops: list[TopOfBook]) -> list[Output]:
        out: list[Output] = []
        marks = self.portfolio.marks
        for top in tops:
            mark = mark_price(top, marks.get(top.asset_id))
            if mark is not None and mark != marks.get(top.asset_id):
                self.portfolio.on_mark(top.asset_id, mark)
                out.append(Output(note=Note("mark", (top.asset_id, mark))))
            if top.asset_id in self.exchange.by_asset:
                out += self._reported(self.exchange.on_book_update(top.asset_id, top.ts_ms))
        return out

    def _on_market(self, info: MarketInfo) -> list[Output]:
        self.markets[info.condition_id] = info
        self.books.on_universe_info(info)  # a bad tick keeps the books' own; market_state dead-letters it
        self.exchange.set_market(info.condition_id, info.category, info.fee_rate)
        out: list[Output] = []
        if info.closed or info.winning_asset_id is not None:
            out += self._reported(self.exchange.on_market_resolved(info.condition_id, self.clock_ms))
        out += _positions(self.portfolio.on_market(info, self.clock_ms * NS_PER_MS))
        return [*out, Output(note=Note("market", info))]

    def _on_resolved(self, event: MarketResolved) -> list[Output]:
        return self._on_market(resolved_market(event, self.markets.get(event.market)))

    def _reported(self, reports: list[ExecutionReport]) -> list[Output]:
        out: list[Output] = []
        for report in reports:
            out += _report_outputs(report)
            out.append(Output(note=Note("report", report)))
            position = self.portfolio.on_report(report)
            if position is not None:
                out += _positions([position])
        return out


class PortfolioState:
    """The one downstream key of cash, equity and P&L (picklable): every market key's reports, marks,
    resolutions and venue time reach it, so its figures are exact in one place, as risk's one key."""

    def __init__(self, config: PetsConfig) -> None:
        trading = config.system.trading
        allocations = {bot.id: bot.capital_allocation * trading.starting_capital for bot in config.bots}
        self.portfolio = Portfolio(trading.starting_capital, allocations)
        self.open: dict[str, ExecutionReport] = {}  # client order id -> last report of an open order
        self.halts: dict[str, tuple[int | None, int, int]] = {}  # command -> (keys expected, told, cancelled)
        self.clock_ms = 0
        self.last_snapshot_ns = 0
        self.next_snapshot_ms = 0
        self.snapshot_interval_ms = config.system.run.snapshot_interval_ms

    def reconcile(self, reports: Iterable[ExecutionReport], reason: str = RESTART_REASON) -> list[Output]:
        """Rebuild the portfolio from stored reports; orders they leave open are reported cancelled."""
        for report in reports:
            self._on_report(report)
        out: list[Output] = []
        for last in list(self.open.values()):
            cancel = msgspec.structs.replace(
                last,
                report_id=f"{last.client_order_id}:cancel:restart",
                kind="cancel",
                last_qty=ZERO,
                last_px=None,
                fee=ZERO,
                rebate=ZERO,
                leaves_qty=ZERO,
                liquidity=None,
                trade_id=None,
                reason=reason,
                ts_ns=self.clock_ms * NS_PER_MS,
            )
            self._on_report(cancel)
            out += _report_outputs(cancel)
        return out

    def on_notes(self, notes: list[Note]) -> list[Output]:
        out: list[Output] = []
        for note in notes:
            out += self.on_note(note)
        return out

    def on_note(self, note: Note) -> list[Output]:
        kind, value = note
        if kind == "tick":
            if value <= self.clock_ms:
                return []
            self.clock_ms = value
            return self.snapshot() if value >= self.next_snapshot_ms else []
        if kind == "report":
            self._on_report(value)
        elif kind == "mark":
            self.portfolio.on_mark(*value)
        elif kind == "market":
            if self.portfolio.on_market(value, self.clock_ms * NS_PER_MS):
                return self.snapshot()  # settled
        else:
            return self._on_halt(kind, *value)
        return []

    def _on_report(self, report: ExecutionReport) -> None:
        self.portfolio.on_report(report)
        self.clock_ms = max(self.clock_ms, report.ts_ns // NS_PER_MS)
        if report.final:
            self.open.pop(report.client_order_id, None)
        else:
            self.open[report.client_order_id] = report

    def _on_halt(self, kind: str, command_id: str, count: int) -> list[Output]:
        """The halt's acknowledgement for `pets halt`, once every key it went to has answered: the
        orders cancelled over all of them."""
        expected, told, cancelled = self.halts.get(command_id, (None, 0, 0))
        if kind == "halt_expected":
            expected = count
        else:
            told, cancelled = told + 1, cancelled + count
        if expected is None or told < expected:
            self.halts[command_id] = (expected, told, cancelled)
            return []
        self.halts.pop(command_id, None)
        reason = halt_reason(command_id)
        alert = RiskAlert(
            alert_id=f"executor-halt-{command_id}",
            kind="emergency_halt",
            bot_id=ALL_BOTS,
            rule=EXECUTOR_HALT_RULE,
            message=f"executor: {cancelled} open orders cancelled ({reason})",
            severity="critical",
            ts_ns=self.clock_ms * NS_PER_MS,
        )
        log.warning("halt %s: %d open orders cancelled", command_id, cancelled)
        return _alerts([alert])

    def open_orders(self) -> dict[str, tuple[int, Decimal]]:
        """bot -> (open orders, notional of its open buys), as the exchanges count them."""
        out: dict[str, tuple[int, Decimal]] = {}
        for report in self.open.values():
            count, buys = out.get(report.bot_id, (0, ZERO))
            if report.side == "BUY":
                buys += report.leaves_qty * report.order_price
            out[report.bot_id] = (count + 1, buys)
        return out

    def snapshot(self) -> list[Output]:
        """P&L per bot and portfolio now (a unique timestamp per snapshot: the table is keyed by it)."""
        ts_ns = max(self.clock_ms * NS_PER_MS, self.last_snapshot_ns + 1_000)
        self.last_snapshot_ns = ts_ns
        self.next_snapshot_ms = self.clock_ms + self.snapshot_interval_ms
        out: list[Output] = []
        for snap in self.portfolio.snapshot(ts_ns, self.open_orders()):
            out += [
                Output(routed=Routed("pnl.snapshot", snap.bot_id, snap)),
                Output(row=("pnl_snapshots", records.pnl_row(snap))),
            ]
        return out


def halt_reason(command_id: str) -> str:
    return f"emergency halt {command_id}"


def _report_outputs(report: ExecutionReport) -> list[Output]:
    return [
        Output(routed=Routed("exec.report", report.market, report)),
        Output(row=("execution_reports", records.report_row(report))),
    ]


def _alerts(alerts: list[RiskAlert]) -> list[Output]:
    return [Output(routed=Routed("risk.alert", alert.bot_id, alert)) for alert in alerts]


def _positions(positions: list[Position]) -> list[Output]:
    out: list[Output] = []
    for position in positions:
        row = records.position_row(position)
        out += [Output(row=("positions", row)), Output(row=("position_history", row))]
    return out


def market_key(item: Input) -> str:
    """The market key of an input (a fanned-out broadcast names its key)."""
    topic, message = item
    if topic == "order.exec":
        return str(message.intent.market)
    if topic == "md.book":
        return str(message[0].market)
    if topic == "md.markets":
        return str(message.condition_id)
    return str(message[1])  # "halt", "cancel_all"


def _broadcast(item: Input) -> bool:
    """A halt of every bot, or an approved cancel-all of every market (risk's): every key acts."""
    if item.topic == "bot.control":
        return True
    return item.topic == "order.exec" and item.message.intent.market == "*"


def _directory(known: set[str] | None, item: Input) -> tuple[set[str], list[tuple[str, Input | Note]]]:
    """The keys seen so far; a broadcast goes to each of them, a halt's count of them to the
    portfolio key (it acknowledges the halt when they have all answered)."""
    known = known if known is not None else set()
    if item.topic == "seen":
        known.add(item.message)
        return known, []
    keys = sorted(known)
    if item.topic == "order.exec":
        return known, [(key, Input("cancel_all", (item.message, key))) for key in keys]
    cmd: ControlCommand = item.message
    expected: list[tuple[str, Input | Note]] = [
        (PORTFOLIO_KEY, Note("halt_expected", (cmd.command_id, len(keys))))
    ]
    return known, expected + [(key, Input("halt", (cmd, key))) for key in keys]


class StoredReports:
    """The execution reports in the database, read once per process when the first key starts
    without recovery state, for every key that does (restart reconciliation)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._lock = threading.Lock()
        self._by_market: dict[str, list[ExecutionReport]] | None = None
        self._all: list[ExecutionReport] = []

    def all(self) -> list[ExecutionReport]:
        self._load()
        return self._all

    def of(self, key: str) -> list[ExecutionReport]:
        """The reports of a market key (live: the one key of every market)."""
        if key == STATE_KEY:
            return self.all()
        self._load()
        assert self._by_market is not None
        return self._by_market.get(key, [])

    def _load(self) -> None:
        with self._lock:
            if self._by_market is None:
                self._all = reports_from_database(self.dsn)
                self._by_market = defaultdict(list)
                for report in self._all:
                    self._by_market[report.market].append(report)


def build_flow(
    settings: Settings,
    source: Source[Any] | None = None,
    sink: Sink[Routed] | None = None,
    *,
    db_sink: Sink[DbRow] | None = None,
    config: PetsConfig | None = None,
    tail: bool = True,
    live: bool = False,
    environ: Mapping[str, str] | None = None,
    heartbeat_s: float = HEARTBEAT_S,
    user_idle_stop_s: float | None = None,
) -> Dataflow:
    """The executor dataflow. Defaults: Kafka in (order.exec, md.book, md.markets) and out (exec.report,
    pnl.snapshot, dlq.trading, risk.alert), TimescaleDB when `settings.postgres_dsn` is set. Tests
    inject a TestingSource of KafkaSourceMessages (`topic` = the prefixed topic name) and TestingSinks.

    `live=True` trades at `settings.venue` (refused with LiveRefusedError naming what is missing;
    `environ` defaults to the process environment + secrets.env); fills come from the user channel at
    `settings.venue.ws_user_url`, followed forever (`user_idle_stop_s`: end after that much silence)."""
    config = config or load_config(settings.config_dir)
    client = None
    user_source: Source[UserMessage] | None = None
    if live:
        if settings.flow_workers > 1:
            raise LiveRefusedError(f"{LIVE_ONE_WORKER_REASON}; {settings.flow_workers} workers refused")
        root = Path((os.environ if environ is None else environ).get("PETS_ROOT") or project_root())
        env = live_environment(environ, root / "secrets.env")
        wallet = require_live(True, env, config)
        client = clob_client(settings.venue.clob_url, wallet)
        preflight(client)
        user_source = user_channel_source(settings, client, user_idle_stop_s)
    registry = load_topic_registry(settings.config_dir)
    book_topic = registry.get("md.book").full_name(settings.topic_prefix)
    control_topic = registry.get("bot.control").full_name(settings.topic_prefix)
    decoded_topics = ("order.exec", "md.markets", "bot.control")
    decode = TopicDecoder(registry, settings.topic_prefix, decoded_topics, SOURCE, settings.max_message_bytes)
    names = {registry.get(name).full_name(settings.topic_prefix): name for name in decoded_topics}

    parser = FrameParser(SOURCE)
    # the executor's clock (report times, GTD expiry) follows book events and approvals: one stamped
    # in 2100 must not move it, as in market_state and risk
    clock = ClockCheck(f"{FLOW_NAME}.clock", settings.clock_tolerance_s, _venue_ms)

    def to_inputs(message: KafkaSourceMessage[Any, Any]) -> list[Input | DeadLetter]:
        if message.topic == book_topic:
            raw = message.value if isinstance(message.value, bytes) else b""
            if len(raw) > settings.max_message_bytes:
                return []  # market_state dead-letters it (unparsed); here it only lacks a book
            out: list[Input | DeadLetter] = []
            by_market: dict[str, list[BookEvent]] = {}
            for event in parser.parse(raw):
                if type(event) is DeadLetter:
                    continue  # dead-lettered by market_state too
                checked = clock(event)
                if type(checked) is DeadLetter:
                    out.append(checked)
                else:
                    by_market.setdefault(checked.market, []).append(checked)
            return [*(Input("md.book", events) for events in by_market.values()), *out]
        decoded = clock(decode(message))
        if isinstance(decoded, DeadLetter):
            return [decoded]
        if message.topic == control_topic and (decoded.command != "halt" or decoded.bot_id != ALL_BOTS):
            return []  # risk's business
        return [Input(names[message.topic or ""], decoded)]

    seen: set[str] = set()  # the keys this process told the directory of (again after a restart)

    def route(item: Input) -> list[tuple[str, Input]]:
        if _broadcast(item):
            return [(DIRECTORY_KEY, item)]
        key = STATE_KEY if live else market_key(item)
        if key in seen:
            return [(key, item)]
        seen.add(key)
        return [(DIRECTORY_KEY, Input("seen", key)), (key, item)]

    if source is None:
        # whether an order fills or is refused depends on the book frames before it
        source = kafka_source(settings, INPUT_TOPICS, tail=tail, order_log=order_log(settings, FLOW_NAME))
    dsn = settings.postgres_dsn if db_sink is None else None
    if db_sink is None and dsn:
        db_sink = TimescaleSink(dsn)
    stored = StoredReports(dsn) if dsn else None

    flow = Dataflow(FLOW_NAME)
    messages = op.input("executor_in", flow, source)
    decoded = op.flat_map("decode", messages, to_inputs)
    split = op.branch("split_dead_letters", decoded, _is_input)
    inputs = split.trues
    if user_source is not None and client is not None:
        users = op.input("executor_user_in", flow, user_source)
        inputs = op.merge(
            "with_user_events", inputs, op.map("user_events", users, lambda m: Input("user", m))
        )
    keyed = op.flat_map("key_market", inputs, route)
    to_directory = op.branch("to_directory", keyed, lambda key_item: key_item[0] == DIRECTORY_KEY)
    fanned = op.map("fan_out", stateful_flat_map("directory", to_directory.trues, _directory), _value)
    to_portfolio = op.branch("to_portfolio", fanned, lambda key_item: key_item[0] == PORTFOLIO_KEY)
    market_inputs = op.merge("market_inputs", to_directory.falses, to_portfolio.falses)
    markets = op.stateful_batch(
        "executor_markets",
        market_inputs,  # type: ignore[arg-type]
        lambda resume: ExecutorLogic(thaw(resume), config, stored, live, client, heartbeat_s),
    )
    market_out = op.map("drop_market_key", markets, _value)
    notes = op.key_on("key_portfolio", op.filter_map("notes", market_out, lambda out: out.note), _portfolio)
    portfolio = op.stateful_batch(
        "executor_portfolio",
        op.merge("portfolio_inputs", notes, to_portfolio.trues),  # type: ignore[arg-type]
        lambda resume: PortfolioLogic(thaw(resume), config, stored, live),
    )
    outputs = op.merge("all_outputs", market_out, op.map("drop_portfolio_key", portfolio, _value))
    routed = op.filter_map("route", outputs, lambda out: out.routed)
    logged = op.inspect("log_dead_letters", split.falses, log_dead_letter)
    dead = op.map("route_dead_letters", logged, lambda d: Routed("dlq.trading", d.source, d))
    op.output("executor_out", op.merge("all_routed", routed, dead), sink or RoutedKafkaSink(settings))
    if db_sink is not None:
        op.output("db_out", op.filter_map("rows", outputs, lambda out: out.row), db_sink)
    return flow


def user_channel_source(
    settings: Settings, client: Any, idle_stop_s: float | None = None
) -> UserChannelSource:
    """The user channel of the client's API key at `settings.venue.ws_user_url`, every market; its REST
    reconcile uses a second client with the same credentials (the flow's client stays on its thread)."""
    creds = client.creds
    config = UserWsConfig(settings.venue.ws_user_url, creds.api_key, creds.api_secret, creds.api_passphrase)
    return UserChannelSource(config, lambda: _same_account(client), idle_stop_s)


def _same_account(client: Any) -> Any:
    from py_clob_client_v2.client import ClobClient

    return ClobClient(
        client.host,
        client.chain_id,
        key=client.signer.private_key,
        creds=client.creds,
        signature_type=client.builder.signature_type,
        funder=client.builder.funder,
    )


class UserChannelSource(FixedPartitionedSource[UserMessage, int]):
    """The user channel as a Bytewax input: one partition (one subscription per flow).

    Its snapshot is the venue time (ms) of the last event it handed on, or the wall clock of its first
    start before any: a resumed partition starts the channel in gap mode from there (`resume_since_ms`).
    `idle_stop_s` ends the input after that long without a message (tests); None follows forever."""

    def __init__(self, config: UserWsConfig, rest: Any, idle_stop_s: float | None = None) -> None:
        self.config = config
        self.rest = rest  # a factory of the REST client, called on the worker
        self.idle_stop_s = idle_stop_s

    def list_parts(self) -> list[str]:
        return [USER_PARTITION]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _UserPartition:
        channel = UserChannel(self.config, self.rest(), resume_since_ms=resume_state).start()
        since_ms = time.time_ns() // NS_PER_MS if resume_state is None else resume_state
        return _UserPartition(channel, since_ms, self.idle_stop_s)


class _UserPartition(StatefulSourcePartition[UserMessage, int]):
    def __init__(self, channel: UserChannel, since_ms: int, idle_stop_s: float | None) -> None:
        self.channel = channel
        self.since_ms = since_ms
        self.idle_stop_s = idle_stop_s
        self.last = datetime.now(UTC)

    def next_batch(self) -> list[UserMessage]:
        batch = self.channel.drain()
        now = datetime.now(UTC)
        if batch:
            self.last = now
            for message in batch:
                body = message.order or message.trade
                if body is not None:
                    self.since_ms = max(self.since_ms, event_ms(body.timestamp))
        elif self.idle_stop_s is not None and (now - self.last).total_seconds() > self.idle_stop_s:
            raise StopIteration
        return batch

    def next_awake(self) -> datetime:
        return datetime.now(UTC) + timedelta(milliseconds=20)

    def snapshot(self) -> int:
        return self.since_ms

    def close(self) -> None:
        self.channel.stop()


class ExecutorLogic(StatefulBatchLogic[Input, Output, bytes]):
    """One market key (live: the one key of every market)."""

    def __init__(
        self,
        resume: ExecutorState | None,
        config: PetsConfig,
        stored: StoredReports | None,
        live: bool = False,
        client: Any = None,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self._heartbeat = timedelta(seconds=heartbeat_s)
        self._next_heartbeat = datetime.now(UTC)
        # without recovery state the key rebuilds its holdings from the stored reports of its market,
        # known at its first input
        self._stored = stored if resume is None else None
        self._live = live
        fresh = resume is None
        if resume is None:
            resume = ExecutorState(config)
        if client is not None:
            if resume.live is None:
                resume.live = LiveExchange(client)
            resume.live.attach(client)
            if fresh and stored is not None:
                resume.live.cancel_all()  # orders we no longer know of must not rest at the venue
        self._state = resume

    def on_batch(self, values: list[Input]) -> tuple[Iterable[Output], bool]:
        if self._stored is not None and values:
            self._state.reconcile(self._stored.of(STATE_KEY if self._live else market_key(values[0])))
            self._stored = None
        return self._state.on_inputs(values), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[Output], bool]:
        return self._state.flush(), StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        """The next heartbeat (live), or when the first approval waiting for its book stops waiting."""
        if self._state.live is not None:
            return self._next_heartbeat
        deadline = self._state.wait_deadline()
        return None if deadline is None else datetime.fromtimestamp(deadline, UTC)

    def on_notify(self) -> tuple[Iterable[Output], bool]:
        """Live, the dead-man switch: keep the venue from cancelling our orders while we run. Paper,
        the approvals whose wait for a book is over (refused: no order book)."""
        if self._state.live is None:
            return self._state.release(), StatefulBatchLogic.RETAIN
        self._state.live.heartbeat()
        self._next_heartbeat = datetime.now(UTC) + self._heartbeat
        return [], StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return freeze(self._state)


class PortfolioLogic(StatefulBatchLogic[Note, Output, bytes]):
    """The portfolio key: cash, equity, P&L snapshots, halt acknowledgements."""

    def __init__(
        self, resume: PortfolioState | None, config: PetsConfig, stored: StoredReports | None, live: bool
    ) -> None:
        self._startup: list[Output] = []
        if resume is None:
            resume = PortfolioState(config)
            if stored is not None:
                reason = LIVE_RESTART_REASON if live else RESTART_REASON
                self._startup = resume.reconcile(stored.all(), reason)
        self._state = resume

    def on_batch(self, values: list[Note]) -> tuple[Iterable[Output], bool]:
        out, self._startup = self._startup, []
        return out + self._state.on_notes(values), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[Output], bool]:
        """End of input: a last P&L snapshot (as `pets run` ends)."""
        out, self._startup = self._startup, []
        return out + self._state.snapshot(), StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return freeze(self._state)


def reports_from_database(dsn: str) -> list[ExecutionReport]:
    """Every stored execution report in the order it was produced (restart reconciliation)."""
    import psycopg

    from pets.pipelines.tables import EXECUTION_REPORTS

    columns = [c for c in EXECUTION_REPORTS.column_names if c not in ("ts", "source_ts")]
    ms = "(extract(epoch from {}) * 1000)::bigint"
    query = (
        f"SELECT {', '.join(columns)}, (extract(epoch from ts) * 1000000)::bigint * 1000, "
        f"{ms.format('source_ts')} FROM execution_reports ORDER BY ts, report_id"
    )
    with psycopg.connect(dsn) as conn:
        try:
            rows = conn.execute(query).fetchall()
        except psycopg.errors.UndefinedTable:
            return []
    return [
        ExecutionReport(**dict(zip(columns, row[:-2], strict=True)), ts_ns=row[-2], source_ts_ms=row[-1])
        for row in rows
    ]


def _venue_ms(item: Any) -> int | None:
    """The venue time an input moves the executor's clock to (book events, approvals)."""
    if type(item) is ApprovedOrder:
        return int(item.intent.source_ts_ms)
    ts = getattr(item, "ts_ms", None)
    return None if ts is None else int(ts)


def _is_input(item: Input | DeadLetter) -> TypeGuard[Input]:
    return isinstance(item, Input)


def _value(key_value: tuple[str, V]) -> V:
    return key_value[1]


def _portfolio(_: Note) -> str:
    return PORTFOLIO_KEY
