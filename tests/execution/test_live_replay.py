"""A replayed approval must not become a second order: the live adapter signs deterministically (salt
from the client order id, timestamp from the intent), the local venue refuses an order hash it already
holds as Polymarket does ("order <hash> is invalid. Duplicated."), and the adapter restored from a
snapshot taken before the send adopts the order the venue holds. Real py-clob-client-v2 over HTTP."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from py_clob_client_v2.clob_types import OrderPayload, PostOrdersV2Args
from py_clob_client_v2.exceptions import PolyApiException
from test_live import CREDS, ENV, LIVE_CONFIG, approved, tokens
from test_live_user import Follower, channel_for

from pets.execution.live import LiveExchange, clob_client, order_salt, require_live
from pets.pipelines.venue_sim.user_server import LocalTradingVenue, serve_trading_venue

D = Decimal
CREATED_NS = 1_750_000_000_123_456_789


@pytest.fixture
def venue() -> Iterator[LocalTradingVenue]:
    with serve_trading_venue(tokens(), **CREDS) as server:
        yield server


def client_at(venue: LocalTradingVenue) -> Any:
    return clob_client(venue.rest_url, require_live(True, ENV, LIVE_CONFIG))


def posted_orders(venue: LocalTradingVenue) -> list[dict[str, object]]:
    """The signed orders of every POST /order and POST /orders, in the order they reached the venue."""
    bodies: list[dict[str, object]] = []
    for method, path, _, body in venue.requests:
        if (method, path) == ("POST", "/order"):
            bodies.append(body["order"])
        elif (method, path) == ("POST", "/orders"):
            bodies += [item["order"] for item in body]
    return bodies


def test_salts_come_from_the_client_order_id_and_stay_exact_as_json_numbers() -> None:
    ids = [f"bot_05-{n}" for n in range(5_000)]
    salts = [int(order_salt(client_id)) for client_id in ids]
    assert len(set(salts)) == len(ids)  # every client order id its own salt
    assert all(0 <= salt < 2**53 and int(float(salt)) == salt for salt in salts)  # a JSON double keeps it
    assert max(salts) >= 2**52  # the 53 bits are used, not a narrower range


def test_the_same_approval_signs_to_the_same_order_and_another_client_id_does_not(
    venue: LocalTradingVenue,
) -> None:
    for client_id in ("a", "a", "b"):  # a fresh adapter each time, as after a restart
        LiveExchange(client_at(venue)).on_order(approved(client_id, created_ns=CREATED_NS), 1)
    first, again, other = posted_orders(venue)
    assert again == first  # salt, timestamp, amounts and signature: the same order hash
    assert first["timestamp"] == str(CREATED_NS // 1_000_000)  # the intent's time, not the wall clock
    assert first["salt"] == int(order_salt("a")) and other["salt"] == int(order_salt("b"))
    assert other["signature"] != first["signature"]
    same_fields = {k: v for k, v in other.items() if k not in ("salt", "signature")}
    assert same_fields == {k: v for k, v in first.items() if k not in ("salt", "signature")}
    assert len(venue.orders) == 2  # a and b; the second a was refused as a duplicate


@pytest.mark.parametrize("meanwhile", ["rests", "partly_filled", "cancelled"])
def test_a_replay_after_a_crash_leaves_one_order_and_reports_what_the_venue_holds(
    venue: LocalTradingVenue, meanwhile: str
) -> None:
    client = client_at(venue)
    exchange = LiveExchange(client)
    snapshot = pickle.dumps(exchange)  # the last epoch's snapshot: taken before the order went out
    channel = channel_for(venue, client)
    follower = Follower(channel, exchange)
    try:
        assert exchange.on_order(approved("a", created_ns=CREATED_NS), 1) == []
        follower.until(lambda f: f.kinds("a") == ["ack"], "the PLACEMENT ack")
    finally:
        channel.stop()
    [venue_id] = venue.orders
    if meanwhile == "partly_filled":  # while we are down, the order lives on at the venue
        venue.fill(venue_id, "4")
    elif meanwhile == "cancelled":  # e.g. from the web UI, with the same account
        client_at(venue).cancel_order(OrderPayload(orderID=venue_id))

    restored = pickle.loads(snapshot)  # the crash: resume from the snapshot, Kafka re-delivers "a"
    restored.attach(client_at(venue))
    assert "a" not in restored.seen
    replayed = restored.on_order(approved("a", created_ns=CREATED_NS), 2)

    assert len(posted_orders(venue)) == 2  # it really was signed and posted again
    assert list(venue.orders) == [venue_id]  # and the venue still holds exactly one order
    got = [(r.kind, r.last_qty, r.leaves_qty, r.venue_order_id) for r in replayed]
    expected = {
        "rests": [("ack", D(0), D(10), venue_id)],
        "partly_filled": [("partial_fill", D(4), D(6), venue_id), ("ack", D(0), D(6), venue_id)],
        "cancelled": [("cancel", D(0), D(0), venue_id)],
    }[meanwhile]
    assert got == expected
    if meanwhile == "rests":  # the same report id as the first run's ack: stored once downstream
        assert [r.report_id for r in replayed] == [r.report_id for r in follower.reports]
        assert [o.id for o in venue.open_orders()] == [venue_id]
    assert set(restored.open) == (set() if meanwhile == "cancelled" else {"a"})
    again = restored.on_order(approved("a", created_ns=CREATED_NS), 3)
    assert again == [] and len(posted_orders(venue)) == 2  # now known: a third delivery is not sent


def test_a_replayed_batch_adopts_the_orders_the_venue_holds_and_places_the_new_one(
    venue: LocalTradingVenue,
) -> None:
    exchange = LiveExchange(client_at(venue))
    snapshot = pickle.dumps(exchange)
    first = [approved("a", created_ns=CREATED_NS), approved("b", price="0.40", created_ns=CREATED_NS)]
    assert exchange.on_orders(first, 1) == []
    restored = pickle.loads(snapshot)
    restored.attach(client_at(venue))
    replayed = restored.on_orders([*first, approved("c", price="0.35", created_ns=CREATED_NS)], 2)

    batches = [len(body) for method, path, _, body in venue.requests if (method, path) == ("POST", "/orders")]
    assert batches == [2, 3]  # a and b went out twice, in batches
    assert len(venue.orders) == 3 and len(venue.open_orders()) == 3  # a, b and c once each
    assert [(r.client_order_id, r.kind) for r in replayed] == [("a", "ack"), ("b", "ack")]
    assert {restored.by_client[c] for c in "abc"} == set(venue.orders)  # adopted under the venue's ids


def test_the_local_venue_refuses_an_order_hash_it_already_holds_as_polymarket_does(
    venue: LocalTradingVenue,
) -> None:
    client = client_at(venue)
    signed = LiveExchange(client)._sign(approved("a"))
    assert not isinstance(signed, str)
    placed = client.post_order(signed.order, "GTC")
    assert placed["success"] and placed["orderID"] == signed.order_hash  # the venue's id is the order hash
    client.cancel_order(OrderPayload(orderID=signed.order_hash))
    with pytest.raises(PolyApiException) as refused:  # cancelled or not, the hash stays taken
        client.post_order(signed.order, "GTC")
    duplicated = f"order {signed.order_hash} is invalid. Duplicated."
    assert (refused.value.status_code, refused.value.error_msg["error"]) == (400, duplicated)
    batch = [PostOrdersV2Args(order=signed.order, orderType="GTC")]
    [in_batch] = client.post_orders(batch)
    assert (in_batch["success"], in_batch["errorMsg"]) == (False, duplicated)
    assert list(venue.orders) == [signed.order_hash] and venue.open_orders() == []
