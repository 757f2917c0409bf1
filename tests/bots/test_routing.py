"""The bots flow's routing (pets.bots.routing.Router.in_order): the order a bot instance sees md.tob
and exec.report in when they arrive interleaved by the broker, as `pets run` hands them over."""

from __future__ import annotations

from decimal import Decimal as D

from bot_factories import T0, market, report, tob

from pets.bots.routing import Router
from pets.schemas.orders import OrderIntent

ORDER = OrderIntent(
    client_order_id="bot_05-m1-1", bot_id="bot_05", strategy_type="market_making", action="place",
    market="m1", asset_id="no1", side="BUY", price=D("0.53"), size=D(50), source_ts_ms=T0,
    created_ns=T0 * 1_000_000,
)  # fmt: skip


def test_a_fill_reaches_the_bot_after_every_top_of_its_frame() -> None:
    """In `pets run` a frame's tops all reach the bots before the fills the frame caused; in the flows
    the executor's fill can arrive between the frame's two tops: it waits for the next later top."""
    router = Router("bot_05", "market")
    router.in_order(market())
    yes, no = tob("yes1", ts_ms=T0), tob("no1", bid="0.51", ask="0.53", ts_ms=T0)
    fill = report(ORDER, "fill", "50", "0.53", ts_ms=T0)
    seen = [event for item in (yes, fill, no) for _, event in router.in_order(item)]
    assert seen == [yes, no]
    later = tob("yes1", bid="0.44", ts_ms=T0 + 1_000)
    assert [event for _, event in router.in_order(later)] == [fill, later]  # just before the next frame


def test_a_waiting_report_goes_on_before_a_market_update() -> None:
    """A resolution's MarketInfo follows the last frame's fills in `pets run`: they go on first."""
    router = Router("bot_05", "market")
    router.in_order(market())
    router.in_order(tob("no1", bid="0.51", ask="0.53", ts_ms=T0))
    ack = report(ORDER, "ack", ts_ms=T0)
    assert router.in_order(ack) == []
    closed = market(closed=True, winning_asset_id="yes1")
    assert [event for _, event in router.in_order(closed)] == [ack, closed]
    older = report(ORDER, "cancel", ts_ms=T0 - 1)  # stamped before the newest top: nothing to wait for
    assert [event for _, event in router.in_order(older)] == [older]
