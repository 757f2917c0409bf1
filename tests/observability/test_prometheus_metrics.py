"""The Prometheus families: names by convention, values from what the flows publish."""

from __future__ import annotations

import json
import time
from decimal import Decimal as D
from typing import Any

import msgspec
import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSource, run_main
from prometheus_client import REGISTRY

from kafka_support import consume_until
from pets.flows.trading_io import Routed, RoutedKafkaSink
from pets.observability import metrics
from pets.schemas.codec import encode
from pets.schemas.config import load_config
from pets.schemas.control import ControlCommand, RiskAlert
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ExecutionReport, OrderIntent, PnlSnapshot
from pets.settings import Settings

MS = 1_000_000


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_at_least_twenty_pets_families_named_by_convention() -> None:
    families = [f for f in REGISTRY.collect() if f.name.startswith("pets_")]
    assert len(families) >= 20, [f.name for f in families]
    for family in families:
        if family.type == "counter":
            assert any(s.name.endswith("_total") for s in family.samples) or not family.samples, family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds") or family.name.endswith("_ratio"), family.name
        # no per-market label anywhere: the series count does not grow with the universe
        for sample in family.samples:
            assert not {"market", "asset_id", "asset"} & set(sample.labels), family.name


def report(
    kind: str, cid: str, qty: str = "0", px: str | None = None, cum: str = "0", leaves: str = "0"
) -> Any:
    return ExecutionReport(
        report_id=f"{cid}-{kind}",
        client_order_id=cid,
        venue_order_id=None,
        bot_id="bot_m1",
        market="m1",
        asset_id="yes1",
        side="BUY",
        kind=kind,  # type: ignore[arg-type]
        order_price=D("0.50"),
        order_size=D(40),
        last_qty=D(qty),
        last_px=None if px is None else D(px),
        cum_qty=D(cum),
        leaves_qty=D(leaves),
        fee=D("0.10"),
        ts_ns=1,
        source_ts_ms=1,
    )


def snapshot(equity: str, wins: int, losses: int) -> PnlSnapshot:
    return PnlSnapshot(
        bot_id="bot_m1", ts_ns=1, cash=D(0), equity=D(equity), realized_pnl=D(0), unrealized_pnl=D(0),
        fees=D(0), rebates=D(0), exposure=D(0), open_orders=0, trades=0, wins=wins, losses=losses,
        max_drawdown=D(0),
    )  # fmt: skip


def test_the_executors_reports_and_snapshots_become_fills_ratios_and_drawdowns(settings: Settings) -> None:
    observe = metrics.TradingObserver(load_config(settings.config_dir).zones.zones)
    # a buy of 40 at 0.50: 10 filled at 0.45 (zone 3: [0.40, 0.60)), 20 at 0.55, the rest cancelled
    observe([
        Routed("exec.report", "m1", report("ack", "o1", leaves="40")),
        Routed("exec.report", "m1", report("partial_fill", "o1", "10", "0.45", cum="10", leaves="30")),
        Routed("exec.report", "m1", report("partial_fill", "o1", "20", "0.55", cum="30", leaves="10")),
        Routed("exec.report", "m1", report("cancel", "o1", cum="30")),
    ])  # fmt: skip
    assert value("pets_trades_total", bot="bot_m1", side="BUY", zone="3") == 2
    assert value("pets_fill_shares_total", bot="bot_m1", side="BUY", zone="3") == 30
    notional = value("pets_fill_notional_dollars_total", bot="bot_m1", side="BUY", zone="3")
    assert notional == pytest.approx(10 * 0.45 + 20 * 0.55)
    assert value("pets_fees_dollars_total", bot="bot_m1") == pytest.approx(0.2)
    assert value("pets_fill_ratio", bot="bot_m1") == pytest.approx(30 / 40)
    assert value("pets_orders_total", bot="bot_m1", status="cancel") == 1
    # slippage: (0.45 - 0.50) / 0.50 = -0.1 (better than asked) and (0.55 - 0.50) / 0.50 = +0.1
    assert value("pets_fill_slippage_ratio_count", bot="bot_m1") == 2
    assert value("pets_fill_slippage_ratio_sum", bot="bot_m1") == pytest.approx(0.0)
    assert value("pets_fill_slippage_ratio_bucket", bot="bot_m1", le="0.0") == 1

    # equity 100 -> 120 (peak) -> 90: drawdown (120 - 90) / 120 = 0.25; 3 wins of 4 round trips
    for equity in ("100", "120", "90"):
        observe([Routed("pnl.snapshot", "bot_m1", snapshot(equity, wins=3, losses=1))])
    assert value("pets_drawdown_ratio", bot="bot_m1") == pytest.approx(0.25)
    assert value("pets_equity_dollars", bot="bot_m1") == 90
    assert value("pets_win_ratio", bot="bot_m1") == pytest.approx(0.75)

    breaker = RiskAlert(
        alert_id="a1", kind="circuit_breaker", bot_id="bot_m1", rule="consecutive_losses", message="3 losses",
        severity="critical", ts_ns=1,
    )  # fmt: skip
    observe([Routed("risk.alert", "bot_m1", breaker)])
    assert value("pets_circuit_breaker_triggers_total", bot="bot_m1", kind="circuit_breaker") == 1


def test_consumer_lag_is_the_high_watermark_minus_what_the_flow_read() -> None:
    stats = {"topics": {"x.md.tob": {"partitions": {
        "0": {"hi_offset": 120, "app_offset": 100, "lo_offset": 0},
        "1": {"hi_offset": 7, "app_offset": -1001, "lo_offset": 2},  # nothing read yet: from the log start
        "-1": {"hi_offset": -1, "app_offset": -1},  # librdkafka's unassigned-messages pseudo partition
    }}}}  # fmt: skip
    metrics.consumer_lag_from_stats(json.dumps(stats))
    assert value("pets_consumer_lag_messages", topic="x.md.tob") == 20 + 5


@pytest.mark.integration
def test_the_risk_flow_counts_what_it_publishes_to_kafka(prefixed_settings: Settings) -> None:
    """The real risk flow writing the real broker: its sink counts approvals, denials by rule, the
    frame -> order latency and the halt alert."""
    from pets.pipelines.kafka_io import ensure_topics

    settings = prefixed_settings
    ensure_topics(settings, ["order.exec", "order.denied", "risk.alert", "dlq.trading"])
    now_ms = time.time_ns() // MS - 200  # the frame behind the intents is 0.2 s old
    before = {
        "approved": value("pets_orders_total", bot="bot_01", status="approved"),
        "denied": value("pets_denials_total", bot="bot_01", rule="tick"),
        "latency": value("pets_frame_to_order_latency_seconds_count"),
        "fast": value("pets_frame_to_order_latency_seconds_bucket", le="0.1"),
        "halts": value("pets_circuit_breaker_triggers_total", bot="*", kind="emergency_halt"),
        "dead": value("pets_dead_letters_total", topic="dlq.trading"),
    }
    halt = ControlCommand(command_id="h1", command="halt", bot_id="*", reason="test", ts_ns=now_ms * MS)
    prefix = settings.topic_prefix
    source = TestingSource([
        msg("md.markets", market(1), prefix),
        msg("md.tob", tob("yes1", "m1", now_ms), prefix),
        msg("md.tob", tob("no1", "m1", now_ms), prefix),
        msg("order.intent", intent(1, "a1", ts_ms=now_ms), prefix),
        msg("order.intent", intent(1, "a2", price="0.505", ts_ms=now_ms), prefix),
        msg("order.intent", b'{"bot_id": 7}', prefix),
        msg("bot.control", halt, prefix),
    ])  # fmt: skip
    from pets.flows.risk import build_flow

    run_main(build_flow(settings, source, RoutedKafkaSink(settings), db_sink=None))
    # the order, then the halt's cancel_all (bot "*")
    assert len(consume_until(settings, "order.exec", lambda values: len(values) >= 2, 30)) == 2
    assert value("pets_orders_total", bot="bot_01", status="approved") - before["approved"] == 1
    assert value("pets_denials_total", bot="bot_01", rule="tick") - before["denied"] == 1
    assert value("pets_frame_to_order_latency_seconds_count") - before["latency"] == 2
    assert value("pets_frame_to_order_latency_seconds_bucket", le="0.1") - before["fast"] == 0  # >= 0.2 s
    assert value("pets_circuit_breaker_triggers_total", bot="*", kind="emergency_halt") - before["halts"] == 1
    assert value("pets_dead_letters_total", topic="dlq.trading") - before["dead"] == 1


def market(n: int) -> MarketInfo:
    return MarketInfo(
        condition_id=f"m{n}", market_id=f"g{n}", question="?", slug=f"m{n}", category="sports",
        token_ids=(f"yes{n}", f"no{n}"), outcomes=("Yes", "No"), neg_risk=False, tick_size=D("0.01"),
        min_order_size=D(5), active=True, closed=False, accepting_orders=True,
    )  # fmt: skip


def tob(asset: str, mkt: str, ts_ms: int) -> TopOfBook:
    return TopOfBook(
        asset_id=asset, market=mkt, ts_ms=ts_ms, best_bid=D("0.49"), best_ask=D("0.51"), best_bid_size=D(100),
        best_ask_size=D(100), mid=D("0.50"), microprice=D("0.50"), spread=D("0.02"), imbalance=D(0),
        tick_size=D("0.01"), stale=False, paired_asset_id=None, ask_sum=None, bid_sum=None, seq=1,
    )  # fmt: skip


def intent(n: int, cid: str, *, ts_ms: int, price: str = "0.51") -> OrderIntent:
    return OrderIntent(
        client_order_id=cid, bot_id="bot_01", strategy_type="arbitrage", action="place", market=f"m{n}",
        asset_id=f"yes{n}", side="BUY", price=D(price), size=D(40), category="sports", source_ts_ms=ts_ms,
        created_ns=ts_ms * MS,
    )  # fmt: skip


def msg(topic: str, message: Any, prefix: str) -> KafkaSourceMessage[bytes, bytes]:
    raw = message if isinstance(message, bytes) else encode(message)
    return KafkaSourceMessage(key=None, value=raw, topic=f"{prefix}{topic}", offset=0, partition=0)  # type: ignore[arg-type]


def test_llm_requests_are_timed_and_failures_counted() -> None:
    from pets.pipelines.news.forecaster import LlmForecaster, LlmSettings
    from pets.pipelines.news.llm_server import serve_llm
    from pets.schemas.signals import NewsItem

    news = NewsItem(item_id="i1", source="wire", feed_url="http://x/feed", title="Fed cuts", summary="50 bps",
                    link="", published_ms=1, received_ns=1)  # fmt: skip
    before = (value("pets_llm_request_duration_seconds_count", model="m-test"),
              value("pets_llm_request_errors_total", model="m-test"))  # fmt: skip
    with serve_llm() as server:
        url = server.base_url
        settings = LlmSettings(base_url=url, model="m-test", api_key="k", timeout_s=0.3, max_retries=0)
        forecaster = LlmForecaster(settings, observe=metrics.observe_llm)
        assert forecaster.forecast(news, market(1), D("0.30"), 1) is not None
        server.script("slow:1")
        news2 = msgspec.structs.replace(news, item_id="i2")
        assert forecaster.forecast(news2, market(1), D("0.30"), 1) is None  # timed out
    assert value("pets_llm_request_duration_seconds_count", model="m-test") - before[0] == 2
    assert value("pets_llm_request_errors_total", model="m-test") - before[1] == 1


def test_rpc_requests_to_the_local_node_are_timed_and_failures_counted() -> None:
    from pets.pipelines.chain.follower import Throttled, Web3LogSource
    from pets.pipelines.venue_sim.chain_node import ChainNode

    def counts() -> tuple[float, float, float]:
        return (value("pets_rpc_request_duration_seconds_count", method="eth_blockNumber"),
                value("pets_rpc_request_duration_seconds_count", method="eth_getBlockByNumber"),
                value("pets_rpc_request_errors_total", method="eth_getBlockByNumber"))  # fmt: skip

    before = counts()
    with ChainNode(head=1000, finalized=990) as node:
        assert Web3LogSource(node.url, observe=metrics.observe_rpc).heads() == (990, 1000)
    with pytest.raises(Throttled):  # the node is gone: connection refused
        Web3LogSource(node.url, timeout_s=1, observe=metrics.observe_rpc).heads()
    after = counts()
    # heads(): eth_getBlockByNumber("finalized") then eth_blockNumber; the second call fails at the first
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (1, 2, 1)


def test_the_market_websockets_own_counters_are_served_at_scrape_time() -> None:
    from pets.pipelines.polymarket.market_ws import ChannelStats

    stats = ChannelStats()
    metrics.watch_channel(stats)
    stats.reconnects, stats.resyncs, stats.messages = 3, 2, 1234
    assert value("pets_market_ws_reconnects_total") == 3
    assert value("pets_market_ws_resyncs_total") == 2
    assert value("pets_market_ws_messages_total") == 1234
