"""The executor dataflow on Bytewax's testing runtime: order.exec + md.book in, reports/P&L/rows out."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

from pets.flows.executor import ExecutorState, PortfolioState, build_flow, reports_from_database
from pets.flows.trading_io import Routed
from pets.pipelines.migrations import migrate
from pets.pipelines.records import report_row
from pets.pipelines.timescale import TimescaleWriter
from pets.schemas.codec import encode
from pets.schemas.config import PetsConfig, load_config
from pets.schemas.control import ControlCommand
from pets.schemas.orders import (
    ApprovedOrder,
    ExecutionReport,
    OrderAction,
    OrderIntent,
    OrderType,
    ReportKind,
    Side,
)
from pets.settings import Settings, project_root

D = Decimal
T0 = 1_750_000_000_000
MARKET, YES, NO = "0xmarket", "1001", "1002"
CONFIG: PetsConfig = load_config(project_root() / "config")
SETTINGS = Settings(config_dir=project_root() / "config", topic_prefix="")


def book(
    asset: str, bids: dict[str, str], asks: dict[str, str], ts: int, market: str = MARKET
) -> KafkaSourceMessage[Any, Any]:
    frame = {
        "event_type": "book",
        "asset_id": asset,
        "market": market,
        "timestamp": str(ts),
        "bids": [{"price": p, "size": s} for p, s in sorted(bids.items())],
        "asks": [{"price": p, "size": s} for p, s in sorted(asks.items(), reverse=True)],
    }
    return KafkaSourceMessage(key=MARKET.encode(), value=json.dumps(frame).encode(), topic="md.book")


def change(asset: str, side: str, price: str, size: str, ts: int) -> KafkaSourceMessage[Any, Any]:
    frame = {
        "event_type": "price_change",
        "market": MARKET,
        "timestamp": str(ts),
        "price_changes": [{"asset_id": asset, "price": price, "size": size, "side": side}],
    }
    return KafkaSourceMessage(key=MARKET.encode(), value=json.dumps(frame).encode(), topic="md.book")


def approved(
    client_id: str,
    side: Side,
    price: str,
    size: str,
    *,
    order_type: OrderType = "GTC",
    post_only: bool = False,
    action: OrderAction = "place",
    bot: str = "bot_05",
    ts: int = T0,
) -> ApprovedOrder:
    intent = OrderIntent(
        client_order_id=client_id,
        bot_id=bot,
        strategy_type="market_making",
        action=action,
        market=MARKET if action != "cancel_all" else "*",
        asset_id=YES if action != "cancel_all" else "*",
        side=side,
        price=D(price),
        size=D(size),
        order_type=order_type,
        post_only=post_only,
        source_ts_ms=ts,
        created_ns=ts * 1_000_000,
    )
    return ApprovedOrder(intent=intent, size=D(size), approved_ns=ts * 1_000_000, sequence=1)


def exec_msg(order: ApprovedOrder) -> KafkaSourceMessage[Any, Any]:
    return KafkaSourceMessage(key=MARKET.encode(), value=encode(order), topic="order.exec")


def run_flow(inputs: list[KafkaSourceMessage[Any, Any]]) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    routed: list[Routed] = []
    rows: list[tuple[str, tuple[Any, ...]]] = []
    flow = build_flow(
        SETTINGS, TestingSource(inputs), TestingSink(routed), db_sink=TestingSink(rows), config=CONFIG
    )
    run_main(flow)
    by_topic: dict[str, list[Any]] = {"exec.report": [], "pnl.snapshot": [], "dlq.trading": []}
    for item in routed:
        by_topic[item.topic].append(item.message)
    assert all(item.key == item.message.market for item in routed if item.topic == "exec.report")
    return by_topic["exec.report"], by_topic["pnl.snapshot"], by_topic["dlq.trading"], rows


def test_fills_against_the_followed_book_with_reports_pnl_and_rows() -> None:
    reports, pnl, dead, rows = run_flow(
        [
            book(YES, {"0.48": "100"}, {"0.50": "30", "0.51": "100"}, T0),
            book(NO, {"0.49": "100"}, {"0.52": "100"}, T0),
            exec_msg(approved("t-1", "BUY", "0.51", "50", order_type="FOK", bot="bot_01")),
            exec_msg(approved("m-1", "BUY", "0.47", "20", post_only=True)),
            change(YES, "SELL", "0.50", "0", T0 + 100),
            book(YES, {"0.46": "100"}, {"0.47": "50"}, T0 + 200),  # the ask falls to our 0.47 bid: filled
            book(NO, {"0.49": "100"}, {"0.52": "100"}, T0 + 300),  # ends the YES update: its top goes on
            # P&L is snapshotted when venue time reaches the next snapshot (pets.yaml run), not per fill
            book(NO, {"0.49": "100"}, {"0.52": "100"}, T0 + CONFIG.system.run.snapshot_interval_ms),
        ]
    )
    assert dead == []
    assert [(r.client_order_id, r.kind, r.last_qty, r.last_px) for r in reports] == [
        ("t-1", "ack", 0, None),
        ("t-1", "partial_fill", D("30.00"), D("0.5")),
        ("t-1", "fill", D("20.00"), D("0.51")),
        ("m-1", "ack", 0, None),
        ("m-1", "fill", D(20), D("0.47")),
    ]
    assert reports[1].fee == D("0.225") and reports[2].fee == (D(20) * D("0.03") * D("0.51") * D("0.49"))
    stored = {table for table, _ in rows}
    assert stored == {"execution_reports", "positions", "position_history", "pnl_snapshots"}
    last = {s.bot_id: s for s in pnl}
    cost = D(30) * D("0.5") + D(20) * D("0.51")
    assert last["bot_01"].cash == D(1200) - cost - reports[1].fee - reports[2].fee
    assert last["bot_05"].cash == D(1200) - D(20) * D("0.47") + reports[4].rebate  # 12% of 10,000
    assert len({(s.bot_id, s.ts_ns) for s in pnl}) == len(pnl)  # one row per (bot, ts): the table's key
    # one at the first frame (the starting capital), one a snapshot interval later
    assert sorted({s.ts_ns // 1_000_000 for s in pnl}) == [T0, T0 + CONFIG.system.run.snapshot_interval_ms]


def test_cancel_all_from_risk_cancels_every_open_order_and_bad_input_is_dead_lettered() -> None:
    reports, _, dead, _ = run_flow(
        [
            book(YES, {"0.48": "100"}, {"0.52": "100"}, T0),
            exec_msg(approved("a", "BUY", "0.45", "10", post_only=True)),
            exec_msg(approved("b", "BUY", "0.44", "10", post_only=True, bot="bot_08")),
            KafkaSourceMessage(key=b"x", value=b'{"intent": 1}', topic="order.exec"),
            exec_msg(
                approved("risk-cancel-all-1", "SELL", "0", "0", action="cancel_all", bot="*", ts=T0 + 5)
            ),
        ]
    )
    assert [(r.client_order_id, r.kind) for r in reports] == [
        ("a", "ack"),
        ("b", "ack"),
        ("a", "cancel"),
        ("b", "cancel"),
    ]
    assert len(dead) == 1 and dead[0].source == "executor.decode" and "$.intent" in dead[0].reason


def _report(
    report_id: str, client_id: str, kind: ReportKind, qty: str = "0", *, leaves: str = "0"
) -> ExecutionReport:
    return ExecutionReport(
        report_id=report_id,
        client_order_id=client_id,
        venue_order_id=None,
        bot_id="bot_05",
        market=MARKET,
        asset_id=YES,
        side="BUY",
        kind=kind,
        order_price=D("0.40"),
        order_size=D(20),
        last_qty=D(qty),
        last_px=D("0.40") if D(qty) else None,
        leaves_qty=D(leaves),
        ts_ns=T0 * 1_000_000,
        source_ts_ms=T0,
    )


STORED = [
    _report("o1:ack:1", "o1", "ack", leaves="20"),
    _report("o1:partial_fill:1", "o1", "partial_fill", "5", leaves="15"),
    _report("o2:ack:1", "o2", "ack", leaves="20"),
    _report("o2:fill:1", "o2", "fill", "20"),
]


def test_reconcile_rebuilds_the_portfolio_and_cancels_orders_left_open() -> None:
    """The market key rebuilds its holdings, the portfolio key the cash and the open orders (once)."""
    state = ExecutorState(CONFIG)
    state.reconcile(STORED)
    assert state.portfolio.token_balance("bot_05", YES) == D(25)
    portfolio = PortfolioState(CONFIG)
    out = portfolio.reconcile(STORED)
    cancels = [o.report for o in out if o.report is not None]
    assert [(r.client_order_id, r.kind, r.leaves_qty) for r in cancels] == [("o1", "cancel", 0)]
    assert "restarted" in (cancels[0].reason or "")
    assert portfolio.open == {}
    bot = portfolio.portfolio.accounts["bot_05"]
    assert bot.cash == bot.allocation - D(25) * D("0.40")  # 5 + 20 shares bought at 0.40, no fee


@pytest.mark.integration
def test_reports_read_back_from_the_database_rebuild_the_same_state(fresh_db: str) -> None:
    migrate(fresh_db)
    with TimescaleWriter(fresh_db) as writer:
        writer.write("execution_reports", [report_row(r) for r in STORED])
    loaded = reports_from_database(fresh_db)
    assert sorted(r.report_id for r in loaded) == sorted(r.report_id for r in STORED)
    assert {r.report_id: r for r in loaded} == {r.report_id: r for r in STORED}


def test_a_halt_on_bot_control_cancels_every_open_order_without_risk() -> None:
    halt = ControlCommand(command_id="h1", command="halt", bot_id="*", ts_ns=1, issued_by="cli:test")
    pause = ControlCommand(command_id="p1", command="pause", bot_id="bot_05", ts_ns=1)
    routed: list[Routed] = []
    inputs = [
        book(YES, {"0.48": "100"}, {"0.52": "100"}, T0),
        exec_msg(approved("a", "BUY", "0.45", "10", post_only=True)),
        exec_msg(approved("b", "BUY", "0.44", "10", post_only=True, bot="bot_08")),
        KafkaSourceMessage(key=b"bot_05", value=encode(pause), topic="bot.control"),  # risk's business
        KafkaSourceMessage(key=b"*", value=encode(halt), topic="bot.control"),
    ]
    run_main(
        build_flow(
            SETTINGS, TestingSource(inputs), TestingSink(routed), db_sink=TestingSink([]), config=CONFIG
        )
    )
    reports = [(r.message.client_order_id, r.message.kind) for r in routed if r.topic == "exec.report"]
    assert reports == [("a", "ack"), ("b", "ack"), ("a", "cancel"), ("b", "cancel")]
    (alert,) = [r.message for r in routed if r.topic == "risk.alert"]
    assert (alert.kind, alert.rule, alert.alert_id) == ("emergency_halt", "executor_halt", "executor-halt-h1")
    assert alert.message.startswith("executor: 2 open orders cancelled")
    assert not [r for r in routed if r.topic == "dlq.trading"]


def test_a_halt_reaches_every_market_key_and_is_acknowledged_once_with_the_total() -> None:
    """The directory hands a halt to every market key it has seen; the portfolio key acknowledges it
    when all have answered (a halt before any market: at once, nothing cancelled)."""
    other, token = "0xother", "2001"
    early = ControlCommand(command_id="h0", command="halt", bot_id="*", ts_ns=1)
    halt = ControlCommand(command_id="h2", command="halt", bot_id="*", ts_ns=2)
    elsewhere = approved("c", "BUY", "0.31", "10", post_only=True)
    elsewhere = msgspec.structs.replace(
        elsewhere, intent=msgspec.structs.replace(elsewhere.intent, market=other, asset_id=token)
    )
    routed: list[Routed] = []
    inputs = [
        KafkaSourceMessage(key=b"*", value=encode(early), topic="bot.control"),
        book(YES, {"0.48": "100"}, {"0.52": "100"}, T0),
        book(token, {"0.30": "100"}, {"0.34": "100"}, T0, market=other),
        exec_msg(approved("a", "BUY", "0.45", "10", post_only=True)),
        exec_msg(approved("b", "BUY", "0.44", "10", post_only=True, bot="bot_08")),
        exec_msg(elsewhere),
        KafkaSourceMessage(key=b"*", value=encode(halt), topic="bot.control"),
    ]
    run_main(
        build_flow(
            SETTINGS, TestingSource(inputs), TestingSink(routed), db_sink=TestingSink([]), config=CONFIG
        )
    )
    reports = [(r.message.client_order_id, r.message.kind) for r in routed if r.topic == "exec.report"]
    assert reports[:3] == [("a", "ack"), ("b", "ack"), ("c", "ack")]
    assert sorted(reports[3:]) == [("a", "cancel"), ("b", "cancel"), ("c", "cancel")]
    alerts = {r.message.alert_id: r.message.message for r in routed if r.topic == "risk.alert"}
    assert alerts == {
        "executor-halt-h0": "executor: 0 open orders cancelled (emergency halt h0)",
        "executor-halt-h2": "executor: 3 open orders cancelled (emergency halt h2)",
    }


def test_a_market_key_leaves_the_cash_to_risk_and_covers_sells_by_its_tokens() -> None:
    """A market key sees one market's fills, so it keeps no cash figure (risk's one ledger refuses a
    buy the wallet cannot pay before order.exec); a sell is still covered by the tokens it holds."""
    from pets.flows.executor import Input

    state = ExecutorState(CONFIG)
    state.on_input(Input("md.book", book(YES, {"0.48": "100000"}, {"0.52": "100000"}, T0).value))
    capital = CONFIG.system.trading.starting_capital
    size = D(30_000)
    assert size * D("0.47") > capital  # 14,100 of a 10,000 wallet
    out = state.on_input(Input("order.exec", approved("big", "BUY", "0.47", str(size), post_only=True)))
    assert [(o.report.kind, o.report.reason) for o in out if o.report is not None] == [("ack", None)]
    out = state.on_input(Input("order.exec", approved("s", "SELL", "0.53", "10", post_only=True)))
    ((kind, reason),) = [(o.report.kind, o.report.reason) for o in out if o.report is not None]
    assert kind == "reject" and "not enough balance: sell 10" in (reason or "")


def test_the_executors_books_take_the_ticks_of_md_markets_as_the_market_state_flows_do() -> None:
    from pets.flows.executor import Input
    from pets.schemas.market_data import MarketInfo

    finer = MarketInfo(
        condition_id=MARKET,
        market_id="1",
        question="q",
        slug="s",
        category="sports",
        token_ids=(YES, NO),
        outcomes=("Yes", "No"),
        neg_risk=False,
        tick_size=D("0.001"),
        min_order_size=D(5),
        active=True,
        closed=False,
        accepting_orders=True,
    )
    state = ExecutorState(CONFIG)
    state.on_input(Input("md.markets", finer))
    frame = book(YES, {"0.455": "100"}, {"0.47": "100"}, T0).value  # mid-range: on the stated grid only
    state.on_input(Input("md.book", frame))
    assert state.exchange.books.book(YES) is not None
    out = state.on_input(Input("order.exec", approved("fine", "BUY", "0.456", "10", post_only=True)))
    assert [(o.report.kind, o.report.reason) for o in out if o.report is not None] == [("ack", None)]


def test_an_approval_before_its_tokens_first_book_waits_for_it_and_the_orders_behind_it_too() -> None:
    """order.exec and md.book are separate topics: a consumer starting up can hand on an approval
    before the frame the bot priced it from. It waits for that book (the key's later approvals behind
    it), so the reports are those of the frame-first order, not "no order book"."""
    frames = [
        book(YES, {"0.48": "100"}, {"0.50": "30", "0.51": "100"}, T0),
        book(NO, {"0.49": "100"}, {"0.52": "100"}, T0),
    ]
    orders = [
        exec_msg(approved("t-1", "BUY", "0.51", "50", order_type="FOK", bot="bot_01")),
        exec_msg(approved("m-1", "BUY", "0.47", "20", post_only=True)),
        exec_msg(approved("m-1", "BUY", "0.47", "20", action="cancel", ts=T0 + 1)),
    ]
    in_order, _, _, _ = run_flow(frames + orders)
    overtaken, _, _, _ = run_flow(orders + frames)
    kinds = [(r.client_order_id, r.kind, r.last_qty) for r in in_order]
    assert kinds == [
        ("t-1", "ack", 0),
        ("t-1", "partial_fill", D("30.00")),
        ("t-1", "fill", D("20.00")),
        ("m-1", "ack", 0),
        ("m-1", "cancel", 0),
    ]
    assert [(r.client_order_id, r.kind, r.last_qty) for r in overtaken] == kinds


def test_an_approval_whose_book_never_comes_is_refused_when_its_wait_is_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pickle

    from pets.flows import executor
    from pets.flows.executor import ExecutorLogic, Input

    monkeypatch.setattr(executor, "BOOK_WAIT_S", 0.0)
    logic = ExecutorLogic(None, CONFIG, None)
    assert logic.notify_at() is None
    out, _ = logic.on_batch([Input("order.exec", approved("w-1", "BUY", "0.47", "20", post_only=True))])
    assert list(out) == [] and logic.notify_at() is not None
    out, _ = logic.on_notify()
    assert [(o.report.kind, o.report.reason) for o in out if o.report is not None] == [
        ("reject", f"no order book for asset {YES}")
    ]
    assert logic.notify_at() is None
    # a snapshot of a key from before approvals could wait resumes with nothing waiting
    state = ExecutorState(CONFIG)
    del state.__dict__["waiting"]
    assert not pickle.loads(pickle.dumps(state)).waiting
