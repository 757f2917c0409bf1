"""The user-channel client (pets.pipelines.polymarket.user_ws) against the local venue's WebSocket, and
the live adapter turning its order/trade events into execution reports: real recorded example messages,
maker fills on the other outcome token, a fill counted once, FAILED after MATCHED, reconnect + REST
reconcile (nothing is replayed by the venue)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from test_live import CREDS, ENV, LIVE_CONFIG, NO, YES, approved, tokens

from pets.execution.live import LiveExchange, clob_client, require_live
from pets.pipelines.polymarket.user_ws import UserChannel, UserMessage, UserWsConfig
from pets.pipelines.venue_sim.user_server import LocalTradingVenue, serve_trading_venue
from pets.schemas.control import RiskAlert
from pets.schemas.orders import ExecutionReport

D = Decimal
USER_EXAMPLES = (
    "order_placement.json",
    "order_cancel.json",
    "user_trade1.json",
    "user_trade2.json",
    "user_trade3.json",
    "user_trade4.json",
    "more/ws_user_order_placement.json",
    "more/ws_user_order_update.json",
    "more/ws_user_order_matched.json",
    "more/ws_user_order_cancellation.json",
    "more/ws_user_order_fok_killed.json",
    "more/ws_user_order_venue_cancel.json",
    "more/ws_user_trade.json",
    "more/ws_user_trade_msg.json",
)


@pytest.fixture
def venue() -> Iterator[LocalTradingVenue]:
    with serve_trading_venue(tokens(), **CREDS) as server:
        yield server


def channel_for(
    venue: LocalTradingVenue, client: object = None, *, resume_since_ms: int | None = None, **overrides: float
) -> UserChannel:
    config = UserWsConfig(venue.ws_url, *CREDS.values(), **overrides)  # type: ignore[arg-type]
    assert CREDS["api_secret"] not in repr(config) and "pass" not in repr(config)
    channel = UserChannel(config, client, resume_since_ms=resume_since_ms).start()
    wait_for(lambda: venue.subscriber_count() == 1, "the user channel to subscribe")
    return channel


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Follower:
    """Feeds what the channel drained to the live exchange, keeping every message, report and alert."""

    def __init__(self, channel: UserChannel, exchange: LiveExchange) -> None:
        self.channel, self.exchange = channel, exchange
        self.messages: list[UserMessage] = []
        self.reports: list[ExecutionReport] = []
        self.alerts: list[RiskAlert] = []

    def pump(self) -> None:
        for message in self.channel.drain():
            self.messages.append(message)
            reports, alerts = self.exchange.on_user(message)
            self.reports += reports
            self.alerts += alerts

    def until(self, condition: Callable[[Follower], bool], what: str) -> None:
        def done() -> bool:
            self.pump()
            return condition(self)

        wait_for(done, what)

    def kinds(self, client_id: str) -> list[str]:
        return [r.kind for r in self.reports if r.client_order_id == client_id]


@pytest.mark.shared_data
def test_real_user_channel_examples_are_served_and_parsed(
    shared_data: Path, venue: LocalTradingVenue
) -> None:
    folder = shared_data / "polymarket" / "ws_examples"
    examples = [json.loads((folder / name).read_text()) for name in USER_EXAMPLES]
    channel = channel_for(venue)
    got: list[UserMessage] = []
    try:
        for example in examples:
            assert venue.publish(example) == 1  # an empty markets list follows every market
        wait_for(lambda: len(got.__iadd__(channel.drain())) >= len(examples), "the examples")
    finally:
        channel.stop()
    assert channel.dead_letters == []
    for example, message in zip(examples, got, strict=True):
        body = message.order or message.trade
        assert body is not None and body.id == example["id"] and message.source == "ws"
        assert message.kind == ("trade" if "maker_orders" in example else "order")
    trade1 = got[2].trade
    assert trade1 is not None and len(trade1.maker_orders) == 6 and trade1.maker_orders[0].outcome == "No"
    assert sum(D(m.matched_amount) for m in trade1.maker_orders) == D(trade1.size)


@pytest.mark.shared_data
def test_the_venue_events_have_the_fields_of_the_real_examples(
    shared_data: Path, venue: LocalTradingVenue
) -> None:
    folder = shared_data / "polymarket" / "ws_examples"
    placement = set(json.loads((folder / "order_placement.json").read_text()))
    trade = set(json.loads((folder / "user_trade2.json").read_text()))
    maker = set(json.loads((folder / "user_trade3.json").read_text())["maker_orders"][0])
    exchange = LiveExchange(clob_client(venue.rest_url, require_live(True, ENV, LIVE_CONFIG)))
    exchange.on_order(approved("a"), 1)
    [order] = venue.open_orders()
    venue.fill(order.id, "1")
    assert set(order.row("PLACEMENT")) == placement
    assert set(venue.trades["trade-0001"]) == trade
    assert set(venue.trades["trade-0001"]["maker_orders"][0]) == maker


def test_orders_and_trades_become_reports_once(venue: LocalTradingVenue) -> None:
    client = clob_client(venue.rest_url, require_live(True, ENV, LIVE_CONFIG))
    exchange = LiveExchange(client)
    channel = channel_for(venue, client, ping_interval_s=0.1)
    follower = Follower(channel, exchange)
    try:
        exchange.on_orders([approved("a", "BUY", "0.45", "10"), approved("b", "SELL", "0.60", "5")], 1)
        exchange.on_order(approved("c", "BUY", "0.30", "5", post_only=False), 2)
        follower.until(lambda f: [r.kind for r in f.reports] == ["ack"] * 3, "three acks")
        by_client = {o.approved.intent.client_order_id: venue_id for venue_id, o in exchange.orders.items()}

        venue.fill(by_client["a"], "4")  # a taker sells YES into our bid: MATCHED, MINED, CONFIRMED
        # a NO buyer crosses our YES bid (minted): the trade is on NO, our fill on YES; no maker `side`
        venue.fill(by_client["a"], "6", cross=True, maker_side_field=False)
        # we sell YES against a NO seller (merged), paying the taker fee at 720 bps (feeRate 0.072)
        venue.fill(by_client["b"], "5", trader_side="TAKER", cross=True, fee_rate_bps="720")
        venue.fill(by_client["c"], "5", statuses=("MATCHED", "RETRYING", "FAILED"))
        follower.until(lambda f: len(f.alerts) == 1 and len(f.reports) == 7, "fills and the alert")
    finally:
        channel.stop()
    fills = [(r.client_order_id, r.kind, r.asset_id, r.side, r.last_qty, r.last_px, r.leaves_qty, r.liquidity)
             for r in follower.reports if r.last_qty]  # fmt: skip
    assert fills == [
        ("a", "partial_fill", YES, "BUY", D(4), D("0.45"), D(6), "maker"),
        ("a", "fill", YES, "BUY", D(6), D("0.45"), D(0), "maker"),
        ("b", "fill", YES, "SELL", D(5), D("0.60"), D(0), "taker"),
        ("c", "fill", YES, "BUY", D(5), D("0.30"), D(0), "maker"),
    ]
    fees = [(r.client_order_id, r.fee) for r in follower.reports if r.last_qty]
    assert fees == [("a", 0), ("a", 0), ("b", D("5") * D("0.072") * D("0.60") * D("0.40")), ("c", 0)]
    cross = next(m.trade for m in follower.messages if m.trade and m.trade.id == "trade-0002")
    assert cross is not None and cross.asset_id == NO  # the trade's own token is the other one
    [alert] = follower.alerts
    assert (alert.rule, alert.severity, alert.bot_id) == ("live_trade_failed", "critical", "bot_05")
    statuses = [m.trade.status for m in follower.messages if m.trade and m.trade.id == "trade-0001"]
    assert statuses == ["MATCHED", "MINED", "CONFIRMED"]  # three events, one fill
    assert venue.pings > 0 and channel.pongs > 0


def test_a_venue_cancel_and_our_cancel_each_report_once(venue: LocalTradingVenue) -> None:
    client = clob_client(venue.rest_url, require_live(True, ENV, LIVE_CONFIG))
    exchange = LiveExchange(client)
    channel = channel_for(venue, client)
    follower = Follower(channel, exchange)
    try:
        exchange.on_orders([approved("a"), approved("b", price="0.40")], 1)
        follower.until(lambda f: len(f.reports) == 2, "two acks")
        follower.reports += exchange.on_order(approved("x", action="cancel", replaces="a"), 2)
        venue_b = exchange.by_client["b"]
        venue.publish({**venue.orders[venue_b].row("CANCELLATION"), "status": "INVALID"})
        follower.until(lambda f: len(f.messages) == 4 and len(f.reports) == 4, "both cancellations")
    finally:
        channel.stop()
    cancels = [(r.client_order_id, r.reason) for r in follower.reports if r.kind == "cancel"]
    assert cancels == [("a", "cancelled (x)"), ("b", "venue cancelled: INVALID")]


def test_after_a_gap_trades_and_orders_are_reconciled_over_rest(venue: LocalTradingVenue) -> None:
    client = clob_client(venue.rest_url, require_live(True, ENV, LIVE_CONFIG))
    exchange = LiveExchange(client)
    channel = channel_for(venue, client, reconnect_initial_s=1.0)
    follower = Follower(channel, exchange)
    try:
        exchange.on_orders([approved("a"), approved("b", price="0.40"), approved("c", price="0.35")], 1)
        follower.until(lambda f: len(f.reports) == 3, "three acks")
        venue.fill(exchange.by_client["a"], "3")  # seen live
        follower.until(lambda f: len(f.reports) == 4, "the first fill")
        venue.drop_connections()
        wait_for(lambda: venue.subscriber_count() == 0, "the socket to drop")
        venue.fill(exchange.by_client["a"], "7")  # nobody hears these: the venue replays nothing
        venue._cancel([exchange.by_client["b"]])
        follower.until(lambda f: any(m.kind == "resynced" for m in f.messages), "the REST reconcile")
    finally:
        channel.stop()
    kinds = [m.kind for m in follower.messages]
    assert kinds[kinds.index("lost") :] == ["lost", "trade", "trade", "open_orders", "resynced"]
    assert [(m.source, m.trade.id) for m in follower.messages if m.kind == "trade" and m.trade][-2:] == [
        ("rest", "trade-0001"),  # counted before the gap: not again
        ("rest", "trade-0002"),
    ]
    after = [(r.client_order_id, r.kind, r.last_qty) for r in follower.reports[4:]]
    assert after == [("a", "fill", D(7)), ("b", "cancel", D(0))]  # c is still open at the venue
    assert set(exchange.open) == {"c"}


def test_an_order_posted_after_the_reconcile_read_the_open_orders_is_not_reported_cancelled(
    venue: LocalTradingVenue,
) -> None:
    client = clob_client(venue.rest_url, require_live(True, ENV, LIVE_CONFIG))
    exchange = LiveExchange(client)
    exchange.on_orders([approved("a"), approved("b", price="0.40")], 1)
    venue._cancel([exchange.by_client["a"]])  # while nobody listened
    channel = channel_for(venue, client, resume_since_ms=0)  # reconciles right after subscribing
    got: list[UserMessage] = []
    try:
        wait_for(lambda: any(m.kind == "resynced" for m in got.__iadd__(channel.drain())), "the reconcile")
    finally:
        channel.stop()
    exchange.on_order(approved("c", price="0.35"), 2)  # posted after the listing was read, before it is used
    reports = [report for message in got for report in exchange.on_user(message)[0]]
    assert [m.kind for m in got] == ["lost", "open_orders", "resynced"]
    assert [(r.client_order_id, r.kind) for r in reports] == [("a", "cancel"), ("b", "ack")]
    assert set(exchange.open) == {"b", "c"}  # c is not in that listing, yet still open


def test_a_malformed_user_frame_is_dead_lettered_with_the_reason(venue: LocalTradingVenue) -> None:
    channel = channel_for(venue)
    got: list[UserMessage] = []
    try:
        venue.publish({"event_type": "order", "id": "0x1"})  # no market, token, side, price or size
        venue.publish({"event_type": "bogus"})
        venue.publish({**json.loads(json.dumps(ORDER_EXAMPLE)), "timestamp": "1"})
        wait_for(lambda: len(got.__iadd__(channel.drain())) >= 1, "the good event")
    finally:
        channel.stop()
    reasons = [reason for reason, _ in channel.dead_letters]
    assert len(reasons) == 2 and "bad order event" in reasons[0] and "unknown user event type" in reasons[1]
    assert [m.kind for m in got] == ["order"]


ORDER_EXAMPLE = {  # the fields of ws_examples/order_placement.json (a fresh clone has no shared data)
    "asset_id": YES,
    "associate_trades": None,
    "created_at": "1725842520",
    "event_type": "order",
    "expiration": "0",
    "id": "0x0f76",
    "maker_address": "0xa3D82Ed56F4c68d2328Fb8c29e568Ba2cAF7d7c8",
    "market": "0xcond1",
    "order_owner": "owner",
    "order_type": "GTC",
    "original_size": "5",
    "outcome": "Yes",
    "owner": "owner",
    "price": "0.513",
    "side": "BUY",
    "size_matched": "0",
    "status": "LIVE",
    "type": "PLACEMENT",
}
