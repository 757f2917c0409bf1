"""An order POST or a cancel that gets no answer from the venue may have landed: the live adapter sends
it again (the venue answers "Duplicated" to a copy of an order it holds, and the order is adopted), so
one order results. After the last unanswered post the venue's REST trades and open orders settle the
order at once (adopted, or rejected as not placed); only when REST fails too is it reported rejected as
unknown, and adopted when the venue shows it after all. The local venue closes the connection without a
response, or answers as a gateway with 502/504 (`lose_order_posts`, `lose_cancels`, `lose_reads`); the
real py-clob-client-v2 sees a transport failure (PolyApiException without a status) or that status."""

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
    ("lost", "batch", "status"),
    [("answer", False, None), ("request", False, None), ("answer", True, None), ("answer", False, 502),
     ("request", False, 504), ("answer", True, 504)],
    ids=str,
)  # fmt: skip
def test_an_unanswered_order_post_is_sent_again_and_one_order_results(
    venue: LocalTradingVenue, lost: str, batch: bool, status: int | None
) -> None:
    client = client_at(venue)
    exchange = LiveExchange(client)
    channel = channel_for(venue, client)
    follower = Follower(channel, exchange)
    orders = [approved("a")] + ([approved("b", price="0.40")] if batch else [])
    venue.lose_order_posts(
        1, taken=lost == "answer", status=status
    )  # the venue took them, or never read them
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


@pytest.mark.parametrize("taken", [True, False], ids=["venue_took_it", "never_reached"])
def test_an_order_whose_posts_all_go_unanswered_is_settled_at_once_over_rest(
    venue: LocalTradingVenue, taken: bool
) -> None:
    exchange = LiveExchange(client_at(venue))
    venue.lose_order_posts(POST_ATTEMPTS, taken=taken)
    [report] = exchange.on_order(approved("a"), 1)
    assert order_posts(venue) == ["/order"] * POST_ATTEMPTS
    reads = [path for _, path, _, _ in venue.requests if path.startswith("/data/")]
    assert sorted(reads) == ["/data/orders", "/data/trades"]
    if taken:  # the venue lists it open: adopted, no reject ever reported
        [venue_id] = venue.orders
        assert (report.kind, report.venue_order_id) == ("ack", venue_id)
        assert "after its posts went unanswered" in (report.reason or "")
        assert set(exchange.open) == {"a"} and len(venue.open_orders()) == 1
    else:  # nothing at the venue: a reject that says so
        assert venue.orders == {} and exchange.open == {}
        assert report.kind == "reject" and "not placed" in (report.reason or "")


@pytest.mark.parametrize("shown_by", ["open_orders_listing", "rest_trade", "placement_event"])
def test_an_order_whose_posts_and_rest_check_go_unanswered_is_rejected_as_unknown_then_adopted(
    venue: LocalTradingVenue, shown_by: str
) -> None:
    client = client_at(venue)
    exchange = LiveExchange(client)
    channel = channel_for(venue, client) if shown_by == "placement_event" else None
    venue.lose_order_posts(POST_ATTEMPTS)  # the first post lands; every answer is lost
    venue.lose_reads(2)  # and so are the answers of the REST check after them
    [reject] = exchange.on_order(approved("a"), 1)
    [venue_id] = venue.orders
    assert order_posts(venue) == ["/order"] * POST_ATTEMPTS and len(venue.open_orders()) == 1
    assert (reject.kind, reject.venue_order_id, reject.leaves_qty) == ("reject", venue_id, D(0))
    reason = reject.reason or ""
    assert "state unknown" in reason and "REST check failed" in reason and "next reconcile" in reason
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
        [_lost, resume] = [q for m, p, q, _ in venue.requests if p == "/data/trades"]
        assert resume["after"] == str(1_750_000_000 - 60)  # trades since shortly before the resume point
    else:
        assert "lost" not in kinds and kinds[0] == "order"  # the PLACEMENT of the first post


@pytest.mark.parametrize("taken", [True, False], ids=["answer_lost", "request_lost"])
def test_an_unanswered_cancel_is_sent_again(venue: LocalTradingVenue, taken: bool) -> None:
    exchange = LiveExchange(client_at(venue))
    assert exchange.on_order(approved("a"), 1) == []  # placed; its ack comes on the user channel
    venue.lose_cancels(1, taken=taken)
    [cancelled] = exchange.on_order(approved("c", action="cancel", replaces="a"), 2)
    deletes = [path for method, path, _, _ in venue.requests if method == "DELETE"]
    assert deletes == ["/order", "/order"]
    assert (cancelled.kind, cancelled.client_order_id) == ("cancel", "a")
    assert venue.open_orders() == [] and exchange.open == {}
