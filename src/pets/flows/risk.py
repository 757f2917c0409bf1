"""risk: the gate between the bots and the executor. Nothing reaches order.exec any other way.

    risk_in (md.markets, md.tob, bot.control, exec.report, order.intent)
        -> decode -> split_dead_letters -> global_key -> risk_engine (ONE RiskEngine)
        -> risk_out: order.exec (ApprovedOrder, key market) | order.denied (OrderDenied, key market)
                     | risk.alert (RiskAlert, key bot id) | dlq.trading (DeadLetter)
        -> risk_db (approved_orders, order_denials, risk_events, bot_status) when a database is set

Every event goes to one key, so one engine sees all of them in one order and the shared limits
(cash, category exposure) are exact: Bytewax sends all items of a key to one worker, one at a time
(docs/risk.md). Restart safety: Bytewax restores the engine and the input offsets of the last
snapshot, then re-delivers what came after it. The decisions published after that snapshot are on
order.exec / order.denied already: on its first event after a start the step reads them back,
applies them to the engine without publishing them again, and drops the re-delivered intents they
decided. So an intent is never approved twice and the reservations of every published approval
count against the limits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from pets.flows.recovery import stateful_flat_map
from pets.flows.timescale_sink import DbRow
from pets.flows.trading_io import (
    ClockCheck,
    Routed,
    RoutedKafkaSink,
    TopicDecoder,
    kafka_source,
    log_dead_letter,
    order_log,
    read_topics,
)
from pets.observability.metrics import CONSECUTIVE_LOSSES
from pets.pipelines.tables import (
    APPROVED_ORDERS,
    BOT_STATUS,
    ORDER_DENIALS,
    RISK_EVENTS,
    ts_from_ns,
)
from pets.risk.engine import NS_PER_MS, RiskEngine
from pets.schemas.config import PetsConfig, load_config
from pets.schemas.control import ALL_BOTS, ControlCommand, DeadLetter, RiskAlert
from pets.schemas.market_data import MarketInfo, TopOfBook, same_top
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderDenied, OrderIntent
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

FLOW_NAME = "risk"
log = logging.getLogger(__name__)
INPUT_TOPICS = ("md.markets", "md.tob", "bot.control", "exec.report", "order.intent")
DECISION_TOPICS = ("order.exec", "order.denied")
GLOBAL_KEY = "portfolio"
# `pets flow run risk` refuses a cluster: every decision reads and moves the whole portfolio's state
MAX_WORKERS = 1
ONE_WORKER_REASON = "its state is one global key (portfolio limits are exact only in one worker)"

Decision = ApprovedOrder | OrderDenied


class BotStatusRow(NamedTuple):
    """A bot's (or the portfolio's, "*") state after an operator command or a breaker."""

    bot_id: str
    state: str
    reason: str
    ts_ns: int


def build_flow(
    settings: Settings,
    source: Source[Any] | None = None,
    sink: Sink[Routed] | None = None,
    *,
    db_sink: Sink[DbRow] | None = None,
    config: PetsConfig | None = None,
    journal: Callable[[], Iterable[Decision]] | None = None,
) -> Dataflow:
    """The risk dataflow; defaults to Kafka in and out (and TimescaleDB when configured). Tests
    inject a TestingSource of KafkaSourceMessages, a TestingSink of `Routed`, and the journal of
    decisions published before (by default read from order.exec and order.denied)."""
    config = config or load_config(settings.config_dir)
    decode = TopicDecoder(
        load_topic_registry(settings.config_dir),
        settings.topic_prefix,
        INPUT_TOPICS,
        f"{FLOW_NAME}.decode",
        settings.max_message_bytes,
    )
    if journal is None:
        journal = (lambda: read_topics(settings, DECISION_TOPICS)) if source is None else tuple
    if db_sink is None and source is None and settings.postgres_dsn:
        from pets.flows.timescale_sink import TimescaleSink

        db_sink = TimescaleSink(settings.postgres_dsn)

    flow = Dataflow(FLOW_NAME)
    messages = op.input(
        "risk_in",
        flow,
        source or kafka_source(settings, INPUT_TOPICS, order_log=order_log(settings, FLOW_NAME)),
    )
    decoded = op.map("decode", messages, decode)
    clock = ClockCheck(f"{FLOW_NAME}.clock", settings.clock_tolerance_s, venue_ms)
    checked = op.map("check_clock", decoded, clock)
    split = op.branch("split_dead_letters", checked, lambda item: not isinstance(item, DeadLetter))
    keyed = op.key_on("global_key", split.trues, lambda _: GLOBAL_KEY)
    results = op.key_rm("unkey", stateful_flat_map("risk_engine", keyed, RiskStep(config, journal)))
    published = op.filter_map("published", results, lambda item: item if isinstance(item, Routed) else None)
    logged = op.inspect("log_dead_letters", split.falses, log_dead_letter)
    dead = op.map("dead_letters", logged, lambda dead: Routed("dlq.trading", dead.source, dead))
    op.output("risk_out", op.merge("all_out", published, dead), sink or RoutedKafkaSink(settings))
    if db_sink is not None:
        op.output("risk_db", op.flat_map("db_rows", results, db_rows), db_sink)
    return flow


def venue_ms(event: Any) -> int | None:
    """The venue time an input moves the engine clock to (control commands and markets move none)."""
    kind = type(event)
    if kind is TopOfBook:
        return int(event.ts_ms)
    if kind is OrderIntent or kind is ExecutionReport:
        return int(event.source_ts_ms)
    return None


class RiskStep:
    """The mapper of the global-key step: feeds the engine, routes what it decides."""

    def __init__(self, config: PetsConfig, journal: Callable[[], Iterable[Decision]]) -> None:
        self.config = config
        self.journal = journal
        self.published: set[str] = set()  # intents decided before this start (not published again)

    def __call__(
        self, engine: RiskEngine | None, event: Any
    ) -> tuple[RiskEngine, list[Routed | BotStatusRow]]:
        if engine is None or not engine.bound:
            engine = self.start(engine)
        kind = type(event)
        outputs: list[ApprovedOrder | OrderDenied | RiskAlert]
        if kind is TopOfBook:
            held = engine.books.get(event.asset_id)
            # a top showing what the held one showed changes nothing, not even the clock (as `pets run`)
            outputs = [] if held is not None and same_top(held, event) else [*engine.on_top_of_book(event)]
            for intent in engine.released(event):
                outputs += engine.on_intent(intent, intent.source_ts_ms * NS_PER_MS)
        elif kind is OrderIntent:
            if event.client_order_id in self.published or engine.waits(event):
                return engine, []
            outputs = engine.on_intent(event, event.source_ts_ms * NS_PER_MS)
        elif kind is ExecutionReport:
            outputs = [*engine.on_execution_report(event)]
            book = engine.ledger.bots.get(event.bot_id)
            if book is not None:
                CONSECUTIVE_LOSSES.labels(event.bot_id).set(book.consecutive_losses)
        elif kind is ControlCommand:
            log.warning(
                "%s %s by %s%s", event.command, event.bot_id, event.issued_by,
                f": {event.reason}" if event.reason else "",
            )  # fmt: skip
            outputs = engine.on_control(event)
        elif kind is MarketInfo:
            outputs = [*engine.on_market(event)]
        else:
            raise TypeError(f"risk flow: unexpected event {kind.__name__}")
        routed: list[Routed | BotStatusRow] = []
        changed: set[str] = set()
        for out in outputs:
            if isinstance(out, ApprovedOrder):
                routed.append(Routed("order.exec", out.intent.market, out))
            elif isinstance(out, OrderDenied):
                routed.append(Routed("order.denied", out.intent.market, out))
            else:
                routed.append(Routed("risk.alert", out.bot_id, out))
                changed.add(out.bot_id)
        if kind is ControlCommand:
            changed |= {ALL_BOTS} | {bot_id for bot_id in engine.bot_configs if event.applies_to(bot_id)}
        if changed:
            routed += _status_rows(engine, changed)
        return engine, routed

    def start(self, engine: RiskEngine | None) -> RiskEngine:
        """A new engine, or one restored from a snapshot, catches up with the decisions published
        after its state was taken: approvals numbered above its sequence, denials not older than
        its clock."""
        restored = engine is not None
        if engine is None:
            engine = RiskEngine(self.config)
        else:
            engine.bind(self.config)
        sequence, clock = engine.sequence, engine.clock_ns
        for decision in self.journal():
            after = (
                decision.sequence > sequence
                if isinstance(decision, ApprovedOrder)
                else decision.denied_ns >= clock
            )
            if after:
                engine.replay_decision(decision)
                self.published.add(decision.intent.client_order_id)
        log.info(
            "risk engine %s; %d decisions published since re-applied",
            f"restored at sequence {sequence}" if restored else "new", len(self.published),
        )  # fmt: skip
        return engine


def _status_rows(engine: RiskEngine, bot_ids: set[str]) -> list[BotStatusRow]:
    snapshot = engine.snapshot()
    rows = []
    for bot_id in sorted(bot_ids):
        state = snapshot if bot_id == ALL_BOTS else snapshot["bots"].get(bot_id)
        if state is not None:
            rows.append(BotStatusRow(bot_id, state["state"], state["reason"], engine.clock_ns))
    return rows


def db_rows(item: Routed | BotStatusRow) -> list[DbRow]:
    """The TimescaleDB rows of one output (idempotent: the tables' unique keys absorb replays)."""
    if isinstance(item, BotStatusRow):
        row = {
            "bot_id": item.bot_id,
            "state": item.state,
            "reason": item.reason,
            "ts": ts_from_ns(item.ts_ns),
        }
        return [("bot_status", BOT_STATUS.row(row))]
    message = item.message
    if isinstance(message, ApprovedOrder):
        intent = message.intent
        return [("approved_orders", APPROVED_ORDERS.row({
            "ts": ts_from_ns(message.approved_ns), "client_order_id": intent.client_order_id,
            "sequence": message.sequence, "bot_id": intent.bot_id, "strategy_type": intent.strategy_type,
            "action": intent.action, "market": intent.market, "asset_id": intent.asset_id,
            "side": intent.side, "price": intent.price, "requested_size": intent.size, "size": message.size,
            "order_type": intent.order_type, "post_only": intent.post_only, "category": intent.category,
            "group_id": intent.group_id,
        }))]  # fmt: skip
    if isinstance(message, OrderDenied):
        intent = message.intent
        return [("order_denials", ORDER_DENIALS.row({
            "ts": ts_from_ns(message.denied_ns), "client_order_id": intent.client_order_id,
            "bot_id": intent.bot_id, "strategy_type": intent.strategy_type, "action": intent.action,
            "market": intent.market, "asset_id": intent.asset_id, "side": intent.side, "price": intent.price,
            "size": intent.size, "rule": message.rule, "reason": message.reason,
        }))]  # fmt: skip
    if isinstance(message, RiskAlert):
        return [("risk_events", RISK_EVENTS.row({
            "ts": ts_from_ns(message.ts_ns), "alert_id": message.alert_id, "kind": message.kind,
            "bot_id": message.bot_id, "rule": message.rule, "message": message.message,
            "severity": message.severity,
            "until_ts": ts_from_ns(message.until_ns) if message.until_ns is not None else None,
        }))]  # fmt: skip
    return []
