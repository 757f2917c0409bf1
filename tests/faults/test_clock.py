"""Clock faults: a frame stamped in 2100 must not move venue time; a replay that goes back in time
must not freeze the rate limit.

Before: risk's clock was the latest venue time it ever saw, so one valid-looking top of book stamped
in the year 2100 was accepted and every later decision carried a 2100 timestamp; and a second
recording starting 48 minutes earlier met rate windows full of the first one's orders (1,286 of
1,405 intents denied by the rate limit).
"""

from __future__ import annotations

import dataclasses
import json
import time
from decimal import Decimal as D
from typing import Any

import msgspec
import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

from pets.flows import market_state, risk
from pets.flows.trading_io import Routed
from pets.pipelines.kafka_io import consumer, ensure_topics, producer
from pets.schemas.codec import decode, encode
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ApprovedOrder, OrderDenied, OrderIntent
from pets.settings import Settings

YEAR_2100_MS = 4_102_444_800_000
NOW_MS = time.time_ns() // 1_000_000 // 1000 * 1000 - 3_600_000  # an hour ago: inside the tolerance
MS = 1_000_000


def _market(n: int) -> MarketInfo:
    return MarketInfo(
        condition_id=f"m{n}", market_id=f"g{n}", question="?", slug=f"m{n}", category="sports",
        token_ids=(f"yes{n}", f"no{n}"), outcomes=("Yes", "No"), neg_risk=False, tick_size=D("0.01"),
        min_order_size=D(5), active=True, closed=False, accepting_orders=True,
    )  # fmt: skip


def _tob(n: int, ts_ms: int) -> TopOfBook:
    return TopOfBook(
        asset_id=f"yes{n}", market=f"m{n}", ts_ms=ts_ms, best_bid=D("0.49"), best_ask=D("0.51"),
        best_bid_size=D(100), best_ask_size=D(100), mid=D("0.50"), microprice=D("0.50"), spread=D("0.02"),
        imbalance=D(0), tick_size=D("0.01"), stale=False, paired_asset_id=None, ask_sum=None, bid_sum=None,
        seq=ts_ms,
    )  # fmt: skip


def _intent(n: int, cid: str, ts_ms: int) -> OrderIntent:
    return OrderIntent(
        client_order_id=cid, bot_id="bot_01", strategy_type="arbitrage", action="place", market=f"m{n}",
        asset_id=f"yes{n}", side="BUY", price=D("0.51"), size=D(20), category="sports", source_ts_ms=ts_ms,
        created_ns=ts_ms * MS,
    )  # fmt: skip


def _msg(topic: str, message: Any) -> KafkaSourceMessage[bytes, bytes]:
    return KafkaSourceMessage(key=None, value=encode(message), topic=topic, offset=0, partition=0)  # type: ignore[arg-type]


def _run_risk(settings: Settings, items: list[KafkaSourceMessage[bytes, bytes]]) -> list[Routed]:
    out: list[Routed] = []
    run_main(
        risk.build_flow(
            dataclasses.replace(settings, topic_prefix=""),
            TestingSource(items),
            TestingSink(out),
            db_sink=TestingSink([]),
        )
    )
    return out


def test_risk_dead_letters_a_top_of_book_from_2100_and_keeps_its_clock(settings: Settings) -> None:
    items = [_msg("md.markets", _market(n)) for n in (1, 2)]
    items += [_msg("md.tob", _tob(1, NOW_MS)), _msg("md.tob", _tob(2, YEAR_2100_MS))]
    items += [_msg("order.intent", _intent(1, "after", NOW_MS + 10))]
    out = _run_risk(settings, items)
    (dead,) = [r.message for r in out if r.topic == "dlq.trading"]
    assert "ahead of the wall clock" in dead.reason and dead.reason.startswith("TopOfBook")
    assert decode("md.tob", dead.raw_bytes()).ts_ms == YEAR_2100_MS
    (decision,) = [r.message for r in out if r.topic == "order.exec"]
    assert decision.intent.client_order_id == "after"
    assert decision.approved_ns == (NOW_MS + 10) * MS  # the engine clock did not move to 2100


def test_a_replay_going_back_48_minutes_is_decided_as_before(settings: Settings) -> None:
    # bot_01 may send 20 orders a second: the first recording fills a second, the second recording
    # (48 minutes earlier) must see empty windows, not the first one's until the clock catches up
    later, earlier = NOW_MS, NOW_MS - 48 * 60_000
    items = [_msg("md.markets", _market(n)) for n in range(1, 11)]
    items += [_msg("md.tob", _tob(n, later)) for n in range(1, 11)]
    items += [_msg("order.intent", _intent(n % 10 + 1, f"first{n}", later)) for n in range(20)]
    items += [_msg("md.tob", _tob(n, earlier)) for n in range(1, 11)]
    items += [_msg("order.intent", _intent(n % 10 + 1, f"second{n}", earlier + n)) for n in range(10)]
    decisions = [r.message for r in _run_risk(settings, items) if r.topic in ("order.exec", "order.denied")]
    second = [d for d in decisions if d.intent.client_order_id.startswith("second")]
    assert len(second) == 10
    denied = [d for d in second if isinstance(d, OrderDenied)]
    assert not [d for d in denied if d.rule == "rate_limit"], denied
    assert all(
        isinstance(d, ApprovedOrder) for d in decisions if d.intent.client_order_id.startswith("first")
    )


@pytest.mark.integration
def test_market_state_dead_letters_a_frame_from_2100_and_goes_on(prefixed_settings: Settings) -> None:
    from kafka import TopicPartition

    settings = dataclasses.replace(prefixed_settings, postgres_dsn=None)
    ensure_topics(settings, ["md.book", "md.markets", "md.tob", "dlq.market_data"])

    def book(ts: int, bid: str) -> bytes:
        return json.dumps({
            "event_type": "book", "asset_id": "yes1", "market": "m1", "timestamp": str(ts), "hash": "h",
            "bids": [{"price": bid, "size": "10"}], "asks": [{"price": "0.60", "size": "10"}],
        }).encode()  # fmt: skip

    send = producer(settings)
    try:
        for frame in (book(NOW_MS, "0.40"), book(YEAR_2100_MS, "0.41"), book(NOW_MS + 1, "0.42")):
            send.send(f"{settings.topic_prefix}md.book", key=b"m1", value=frame)
        send.flush()
    finally:
        send.close()
    run_main(market_state.build_flow(settings, market_infos=[_market(1)], tail=False))
    read = consumer(settings)
    got: dict[str, list[bytes]] = {"md.tob": [], "dlq.market_data": []}
    try:
        for name in got:
            topic = f"{settings.topic_prefix}{name}"
            read.assign([TopicPartition(topic, p) for p in read.partitions_for_topic(topic) or ()])
            read.seek_to_beginning()
            deadline = time.monotonic() + 20
            while not got[name] or (name == "md.tob" and len(got[name]) < 2):
                for records in read.poll(timeout_ms=200).values():
                    got[name] += [r.value for r in records]
                if time.monotonic() > deadline:
                    break
    finally:
        read.close()
    (dead,) = [decode("dlq.market_data", v) for v in got["dlq.market_data"]]
    assert "ahead of the wall clock" in dead.reason and b"4102444800000" in dead.raw_bytes()
    tops = [decode("md.tob", v) for v in got["md.tob"]]
    assert [(t.ts_ms, t.best_bid) for t in tops] == [(NOW_MS, D("0.40")), (NOW_MS + 1, D("0.42"))]


def test_executor_dead_letters_a_frame_from_2100_and_keeps_its_clock(settings: Settings) -> None:
    # Before: the executor's clock followed md.book itself, so the 2100 frame moved it 74 years
    # ahead: the resting GTD order expired at the next frame and every report carried a 2100 time.
    from pets.flows import executor

    def book(ts: int, bid: str) -> KafkaSourceMessage[bytes, bytes]:
        frame = {
            "event_type": "book", "asset_id": "yes1", "market": "m1", "timestamp": str(ts), "hash": "h",
            "bids": [{"price": bid, "size": "100"}], "asks": [{"price": "0.60", "size": "100"}],
        }  # fmt: skip
        return KafkaSourceMessage(key=b"m1", value=json.dumps(frame).encode(), topic="md.book")  # type: ignore[arg-type]

    def approved(cid: str, ts: int, **changes: Any) -> ApprovedOrder:
        intent = msgspec.structs.replace(_intent(1, cid, ts), price=D("0.40"), size=D(10), **changes)
        return ApprovedOrder(intent=intent, size=D(10), approved_ns=ts * MS, sequence=1)

    items = [
        book(NOW_MS, "0.39"),
        _msg("order.exec", approved("gtd", NOW_MS, order_type="GTD", expires_at_ms=NOW_MS + 60_000)),
        book(YEAR_2100_MS, "0.38"),
        book(NOW_MS + 1_000, "0.39"),
        _msg("order.exec", approved("after", NOW_MS + 2_000)),
    ]
    out: list[Routed] = []
    run_main(
        executor.build_flow(
            dataclasses.replace(settings, topic_prefix="", postgres_dsn=None),
            TestingSource(items), TestingSink(out), db_sink=TestingSink([]),
        )
    )  # fmt: skip
    (dead,) = [r.message for r in out if r.topic == "dlq.trading"]
    assert dead.source == "executor.clock" and "ahead of the wall clock" in dead.reason
    reports = [r.message for r in out if r.topic == "exec.report"]
    assert [(r.client_order_id, r.kind) for r in reports] == [("gtd", "ack"), ("after", "ack")]
    assert max(r.ts_ns for r in reports) == (NOW_MS + 2_000) * MS  # not 2100
