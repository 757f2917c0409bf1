"""An order POST that gets no HTTP answer may have landed: the live adapter posts it again (the venue
answers "Duplicated" to a copy it holds, and the order is adopted), so one order results; after the last
unanswered post it reports a reject saying the state is unknown, and adopts the order when the venue
shows it after all. The local venue closes the connection without a response (`lose_order_posts`);
the real py-clob-client-v2 sees that as a transport failure (PolyApiException without a status)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from test_live import CREDS, approved, tokens
from test_live_replay import client_at
from test_live_user import Follower, channel_for

from pets.execution.live import POST_ATTEMPTS, LiveExchange
from pets.pipelines.venue_sim.user_server import LocalTradingVenue, serve_trading_venue

D = Decimal


@pytest.fixture
def venue() -> Iterator[LocalTradingVenue]:
    with serve_trading_venue(tokens(), **CREDS) as server:
        yield server


def order_posts(venue: LocalTradingVenue) -> list[str]:
    posts = [path for method, path, _, _ in venue.requests if method == "POST"]
    return [path for path in posts if path in ("/order", "/orders")]


@pytest.mark.parametrize(
    ("lost", "batch"), [("answer", False), ("request", False), ("answer", True)], ids=str
)
def test_an_unanswered_order_post_is_sent_again_and_one_order_results(
    venue: LocalTradingVenue, lost: str, batch: bool
) -> None:
    client = client_at(venue)
    exchange = LiveExchange(client)
    channel = channel_for(venue, client)
    follower = Follower(channel, exchange)
    orders = [approved("a")] + ([approved("b", price="0.40")] if batch else [])
    venue.lose_order_posts(1, taken=lost == "answer")  # the venue took the orders, or never read them
    try:
        follower.reports += exchange.on_orders(orders, 1)
        placements = len(orders)  # one PLACEMENT event per order the venue took, whichever post it was
        follower.until(lambda f: sum(m.kind == "order" for m in f.messages) == placements, "placements")
    finally:
        channel.stop()
    assert order_posts(venue) == ["/orders" if batch else "/order"] * 2  # posted again once
    assert len(venue.orders) == len(orders) and len(venue.open_orders()) == len(orders)
    assert {exchange.by_client[o.intent.client_order_id] for o in orders} == set(venue.orders)
    assert sorted((r.client_order_id, r.kind) for r in follower.reports) == [
        (o.intent.client_order_id, "ack") for o in orders
    ]  # one ack each: adopted after "Duplicated" (answer lost) or from its PLACEMENT (request lost)
    assert set(exchange.open) == {o.intent.client_order_id for o in orders}


@pytest.mark.parametrize("shown_by", ["open_orders_listing", "rest_trade", "placement_event"])
def test_an_order_whose_posts_all_go_unanswered_is_rejected_as_unknown_then_adopted_if_the_venue_has_it(
    venue: LocalTradingVenue, shown_by: str
) -> None:
    client = client_at(venue)
    exchange = LiveExchange(client)
    channel = channel_for(venue, client) if shown_by == "placement_event" else None
    venue.lose_order_posts(POST_ATTEMPTS)  # the first post lands; every answer is lost
    [reject] = exchange.on_order(approved("a"), 1)
    [venue_id] = venue.orders
    assert order_posts(venue) == ["/order"] * POST_ATTEMPTS and len(venue.open_orders()) == 1
    assert (reject.kind, reject.venue_order_id, reject.leaves_qty) == ("reject", venue_id, D(0))
    assert "state unknown" in (reject.reason or "") and "next reconcile" in (reject.reason or "")
    assert exchange.open == {} and exchange.open_orders() == {}  # not counted as resting meanwhile

    if shown_by == "rest_trade":  # it traded while nobody listened: the reconcile's trades show it first
        venue.fill(venue_id, "4")
    if channel is None:  # the channel was down: a resume (or gap) reconcile lists the order open
        channel = channel_for(venue, client, resume_since_ms=1_750_000_000_000)
    follower = Follower(channel, exchange)
    try:
        follower.until(lambda f: f.kinds("a")[:1] == ["ack"], "the adoption")
        if shown_by != "rest_trade":
            venue.fill(venue_id, "4")
        follower.until(lambda f: f.kinds("a") == ["ack", "partial_fill"], "the fill")
    finally:
        channel.stop()
    [ack, fill] = follower.reports
    assert ack.venue_order_id == venue_id and "adopted" in (ack.reason or "")
    assert (fill.last_qty, fill.cum_qty, fill.leaves_qty) == (D(4), D(4), D(6))
    assert set(exchange.open) == {"a"} and len(venue.orders) == 1
    kinds = [m.kind for m in follower.messages]
    if shown_by != "placement_event":
        rest = ["lost", "trade", "open_orders", "resynced"]
        if shown_by == "open_orders_listing":
            rest.remove("trade")  # no trade yet; the fill's events come later over the socket
        assert kinds[: len(rest)] == rest
        [after] = [q["after"] for m, p, q, _ in venue.requests if p == "/data/trades"]
        assert after == str(1_750_000_000 - 60)  # trades since shortly before the resume point
    else:
        assert "lost" not in kinds and kinds[0] == "order"  # the PLACEMENT of the first post
