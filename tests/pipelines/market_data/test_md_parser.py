"""The market-channel parser on the venue's real example messages and on corrupted copies of them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.pipelines.market_data.parser import (
    NOT_MARKET_CHANNEL,
    FrameParser,
    LevelDeltas,
    Snapshot,
    TickSizeSet,
)
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import (
    BestBidAsk,
    Continuity,
    LastTradePrice,
    MarketResolved,
    NewMarket,
)

MARKET_EXAMPLES: dict[str, tuple[type, ...]] = {
    "book.json": (Snapshot,),
    "last_trade_price.json": (LastTradePrice,),
    "price_change.json": (LevelDeltas,),
    "price_change_v2.json": (LevelDeltas,),
    "tick_size_change.json": (TickSizeSet,),
    "more/ws_book_snapshot.json": (Snapshot,),
    "more/ws_last_trade.json": (LastTradePrice,),
    "more/ws_market_best_bid_ask_msg.json": (BestBidAsk,),
    "more/ws_market_book_msg.json": (Snapshot,),
    "more/ws_market_last_trade_msg.json": (LastTradePrice,),
    "more/ws_market_new_market_msg.json": (NewMarket,),
    "more/ws_market_price_change_msg.json": (LevelDeltas,),
    "more/ws_market_resolved_msg.json": (MarketResolved,),
    "more/ws_market_tick_size_msg.json": (TickSizeSet,),
    "more/ws_quotes.json": (LevelDeltas, LevelDeltas),  # price_changes of two assets
    "more/ws_tick_size_change.json": (TickSizeSet,),
}
USER_CHANNEL_EXAMPLES = [
    "order_cancel.json",
    "order_placement.json",
    "trades.json",
    "user_trade1.json",
    "user_trade2.json",
    "user_trade3.json",
    "user_trade4.json",
    "more/ws_user_order_cancellation.json",
    "more/ws_user_order_fok_killed.json",
    "more/ws_user_order_matched.json",
    "more/ws_user_order_msg.json",
    "more/ws_user_order_placement.json",
    "more/ws_user_order_update.json",
    "more/ws_user_order_venue_cancel.json",
    "more/ws_user_trade.json",
    "more/ws_user_trade_msg.json",
]

parser = FrameParser("test")


def _only_dead_letter(items: list[Any]) -> DeadLetter:
    assert len(items) == 1 and isinstance(items[0], DeadLetter), items
    return items[0]


@pytest.mark.shared_data
def test_the_example_lists_cover_every_file(ws_examples: Path) -> None:
    found = {str(p.relative_to(ws_examples)) for p in ws_examples.rglob("*.json")}
    assert found == set(MARKET_EXAMPLES) | set(USER_CHANNEL_EXAMPLES)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(MARKET_EXAMPLES))
def test_every_market_channel_example_parses(ws_examples: Path, name: str) -> None:
    items = parser.parse((ws_examples / name).read_bytes())
    assert tuple(type(item) for item in items) == MARKET_EXAMPLES[name]


@pytest.mark.shared_data
@pytest.mark.parametrize("name", USER_CHANNEL_EXAMPLES)
def test_user_channel_examples_are_dead_lettered_as_not_market_channel(ws_examples: Path, name: str) -> None:
    raw = (ws_examples / name).read_bytes()
    dead = _only_dead_letter(parser.parse(raw, topic="md.book", partition=2, offset=17))
    assert dead.reason.startswith(NOT_MARKET_CHANNEL)
    assert (dead.source, dead.topic, dead.partition, dead.offset) == ("test", "md.book", 2, 17)
    assert dead.raw_bytes() == raw  # nothing lost


@pytest.mark.shared_data
def test_book_snapshot_levels_are_exact_integer_units(ws_examples: Path) -> None:
    raw = json.loads((ws_examples / "book.json").read_bytes())
    (snapshot,) = parser.parse((ws_examples / "book.json").read_bytes())
    assert isinstance(snapshot, Snapshot)
    assert snapshot.asset_id == raw["asset_id"] and snapshot.ts_ms == int(raw["timestamp"])
    expected_bids = [
        (int(Decimal(b["price"]) * 10_000), int(Decimal(b["size"]) * 10**6)) for b in raw["bids"]
    ]
    assert snapshot.bids == expected_bids
    assert len(snapshot.asks) == len(raw["asks"])


@pytest.mark.shared_data
def test_price_change_schemas_normalise_to_level_deltas(ws_examples: Path) -> None:
    (old_inline,) = parser.parse((ws_examples / "price_change.json").read_bytes())
    assert isinstance(old_inline, LevelDeltas)
    assert old_inline.changes == [(False, 5140, 21_574_080_000)]  # SELL 0.514 x 21574.08
    (v2,) = parser.parse((ws_examples / "price_change_v2.json").read_bytes())
    assert isinstance(v2, LevelDeltas)
    assert v2.changes == [
        (True, 6000, 3_300_000_000),
        (True, 5000, 3_400_000_000),
        (True, 7000, 3_400_000_000),
    ]
    first, second = parser.parse((ws_examples / "more/ws_quotes.json").read_bytes())
    assert isinstance(first, LevelDeltas) and isinstance(second, LevelDeltas)
    assert first.asset_id != second.asset_id and first.ts_ms == second.ts_ms
    assert second.changes == [(False, 4900, 100_000_000)]


def test_the_recorded_changes_schema_parses() -> None:
    raw = (
        b'{"event_type":"price_change","asset_id":"a1","market":"557549","timestamp":"1751420716289",'
        b'"hash":"h","changes":[{"price":"0.85","side":"BUY","size":"18609.0"},'
        b'{"price":"0.4","side":"SELL","size":"0.0"}]}'
    )
    (deltas,) = parser.parse(raw)
    assert deltas == LevelDeltas(
        "a1", "557549", 1751420716289, [(True, 8500, 18_609_000_000), (False, 4000, 0)], "h"
    )


def test_an_array_frame_yields_each_event_and_dead_letters_only_the_bad_one() -> None:
    good = {
        "event_type": "tick_size_change",
        "asset_id": "a",
        "market": "m",
        "old_tick_size": "0.01",
        "new_tick_size": "0.001",
        "timestamp": "5",
    }
    bad = {**good, "event_type": "mystery"}
    items = parser.parse(json.dumps([good, bad, good]).encode())
    assert [type(i) for i in items] == [TickSizeSet, DeadLetter, TickSizeSet]
    assert items[1].reason == "unknown event type 'mystery'"  # type: ignore[union-attr]
    assert json.loads(items[1].raw_bytes()) == bad  # type: ignore[union-attr]


def test_our_continuity_event_parses() -> None:
    raw = (
        b'{"event_type":"continuity","market":"m","asset_ids":["a","b"],"status":"lost",'
        b'"reason":"reconnect","recv_ns":7}'
    )
    (event,) = parser.parse(raw)
    assert event == Continuity(market="m", asset_ids=("a", "b"), status="lost", reason="reconnect", recv_ns=7)


def test_a_continuity_event_without_its_market_is_dead_lettered() -> None:
    raw = b'{"event_type":"continuity","asset_ids":["a"],"status":"lost","reason":"stall","recv_ns":7}'
    (letter,) = parser.parse(raw)
    assert isinstance(letter, DeadLetter) and "market" in letter.reason


def _corrupt(ws_examples: Path, name: str, edit: Any) -> bytes:
    data = json.loads((ws_examples / name).read_bytes())
    edit(data)
    return json.dumps(data).encode()


CORRUPTIONS = [
    ("book.json", lambda d: d["bids"][0].update(size="-5"), "negative size -5"),
    (
        "book.json",
        lambda d: d["asks"][3].update(price="0.12345"),
        "price 0.12345 is off the tick grid 0.0001",
    ),
    ("book.json", lambda d: d["asks"][0].update(price="1.5"), "price 1.5 is outside [0, 1]"),
    (
        "book.json",
        lambda d: d["bids"][0].update(price=0.5),
        "Expected `str`, got `float` - at `$.bids[0].price`",
    ),
    ("book.json", lambda d: d.pop("asset_id"), "missing required field `asset_id`"),
    ("book.json", lambda d: d.update(event_type="boook"), "unknown event type 'boook'"),
    (
        "book.json",
        lambda d: d.update(timestamp="yesterday"),
        "timestamp 'yesterday' is not integer milliseconds",
    ),
    ("price_change.json", lambda d: d.pop("asset_id"), "price_change without asset_id"),
    ("price_change.json", lambda d: d.update(size="abc"), "size 'abc' is not a decimal number"),
    (
        "price_change_v2.json",
        lambda d: d["price_changes"][1].update(side="HOLD"),
        "Invalid enum value 'HOLD'",
    ),
    (
        "price_change_v2.json",
        lambda d: d["price_changes"][0].pop("asset_id"),
        "missing required field `asset_id`",
    ),
    (
        "price_change_v2.json",
        lambda d: d["price_changes"][2].update(size="1.0000001"),
        "more than 6 decimals",
    ),
    ("tick_size_change.json", lambda d: d.update(new_tick_size="0.3"), "tick size 0.3 is not in (0, 0.1]"),
    ("last_trade_price.json", lambda d: d.update(price="-0.491"), "negative price -0.491"),
]


@pytest.mark.shared_data
@pytest.mark.parametrize(("name", "edit", "reason"), CORRUPTIONS)
def test_corrupted_examples_are_dead_lettered_with_the_problem(
    ws_examples: Path, name: str, edit: Any, reason: str
) -> None:
    raw = _corrupt(ws_examples, name, edit)
    dead = _only_dead_letter(parser.parse(raw))
    assert reason in dead.reason
    assert dead.raw_bytes() == raw


@pytest.mark.shared_data
@pytest.mark.parametrize("cut", [1, 10, 100, -1])
def test_truncated_json_is_dead_lettered(ws_examples: Path, cut: int) -> None:
    raw = (ws_examples / "price_change_v2.json").read_bytes().rstrip()[:cut]
    dead = _only_dead_letter(parser.parse(raw))
    assert dead.reason.startswith("malformed JSON")
    assert dead.raw_bytes() == raw


def test_keepalive_text_and_binary_garbage_are_dead_lettered() -> None:
    assert "venue control text 'PONG'" in _only_dead_letter(parser.parse(b"PONG")).reason
    garbage = bytes(range(200, 256))
    dead = _only_dead_letter(parser.parse(garbage))
    assert dead.payload_encoding == "base64" and dead.raw_bytes() == garbage
    assert "expected a JSON object" in _only_dead_letter(parser.parse(b"[1, 2]")[:1]).reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {"event_type": st.sampled_from(["book", "price_change", "tick_size_change", "continuity", "x"])},
    optional={
        "asset_id": st.text(max_size=3),
        "market": st.text(max_size=3),
        "timestamp": st.one_of(st.text(max_size=5), st.integers()),
        "bids": st.lists(st.fixed_dictionaries({"price": st.text(max_size=6), "size": st.text(max_size=6)})),
        "changes": st.lists(
            st.fixed_dictionaries(
                {
                    "price": st.text(max_size=6),
                    "size": st.text(max_size=6),
                    "side": st.sampled_from(["BUY", "x"]),
                }
            )
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=64),
        json_values.map(lambda v: json.dumps(v).encode()),
        event_like.map(lambda v: json.dumps(v).encode()),
    )
)
def test_the_parser_never_raises(raw: bytes) -> None:
    for item in parser.parse(raw):
        assert isinstance(item, DeadLetter | Snapshot | LevelDeltas | TickSizeSet | Continuity)
        if isinstance(item, DeadLetter):
            assert item.reason


def test_an_array_frame_with_a_bad_level_dead_letters_only_that_event() -> None:
    good = {
        "event_type": "price_change",
        "asset_id": "a",
        "market": "m",
        "timestamp": "9",
        "venue_extra": 1,
        "changes": [{"price": "0.5", "side": "BUY", "size": "10"}],
    }
    bad = {**good, "changes": [{"price": "0.5", "side": "BUY", "size": "-10"}]}
    items = parser.parse(json.dumps([good, bad]).encode())
    assert [type(i) for i in items] == [LevelDeltas, DeadLetter]
    assert "negative size -10" in items[1].reason  # type: ignore[union-attr]
    assert json.loads(items[1].raw_bytes()) == bad  # type: ignore[union-attr]  # unknown fields kept too
