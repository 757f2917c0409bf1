"""Our wire messages: agreed defaults, strictness, and the small pure helpers on them."""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.schemas.codec import decode, encode
from pets.schemas.control import DEAD_LETTER_PAYLOAD_BYTES, BatchCommand, ControlCommand, DeadLetter
from pets.schemas.market_data import TopOfBook, mark_price
from pets.schemas.orders import (
    ApprovedOrder,
    ExecutionReport,
    OrderIntent,
    make_client_order_id,
    report_id,
)
from pets.schemas.signals import news_item_id
from pets.schemas.topics import TopicSpec


def test_our_messages_are_frozen_kw_only_and_strict(
    own_topic: tuple[TopicSpec, Any], struct_types: Callable[[Any], list[type[msgspec.Struct]]]
) -> None:
    _, schema_type = own_topic
    for cls in struct_types(schema_type):
        config = cls.__struct_config__
        assert config.frozen and config.forbid_unknown_fields, cls.__name__
        kinds = {p.kind for p in inspect.signature(cls).parameters.values()}
        assert kinds == {inspect.Parameter.KEYWORD_ONLY}, cls.__name__


@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_unknown_field_is_rejected_by_name(
    own_topic: tuple[TopicSpec, Any],
    wire_strategy: Callable[[Any], st.SearchStrategy[Any]],
    data: st.DataObject,
) -> None:
    spec, schema_type = own_topic
    sample = data.draw(wire_strategy(schema_type))
    wire = {**json.loads(encode(sample)), "surprise_field": 1}
    with pytest.raises(msgspec.ValidationError, match="unknown field `surprise_field`"):
        decode(spec.name, json.dumps(wire))


def test_intent_defaults_match_the_spec(make_intent: Callable[..., OrderIntent]) -> None:
    intent = make_intent()
    assert intent.order_type == "GTC"
    assert intent.post_only is False
    assert intent.tick_size == Decimal("0.01")
    assert intent.min_order_size == Decimal("5")
    assert intent.neg_risk is False
    assert intent.category == "default"
    assert (intent.probability, intent.group_id, intent.replaces, intent.expires_at_ms) == (None,) * 4


def test_intents_are_immutable(make_intent: Callable[..., OrderIntent]) -> None:
    intent = make_intent()
    with pytest.raises(AttributeError):
        intent.price = Decimal("0.5")  # type: ignore[misc]


def test_notional_is_exact(make_intent: Callable[..., OrderIntent]) -> None:
    intent = make_intent(price=Decimal("0.07"), size=Decimal("33.33"))
    assert intent.notional == Decimal("2.3331")
    approved = ApprovedOrder(intent=intent, size=Decimal("10.00"), approved_ns=1, sequence=1)
    assert approved.notional == Decimal("0.7000")
    assert approved.market == intent.market


def test_report_defaults_are_zero_decimals() -> None:
    report = ExecutionReport(
        report_id="r",
        client_order_id="c",
        venue_order_id=None,
        bot_id="b01",
        market="m",
        asset_id="a",
        side="SELL",
        kind="ack",
        order_price=Decimal("0.5"),
        order_size=Decimal("5"),
        ts_ns=1,
        source_ts_ms=1,
    )
    for name in ("last_qty", "cum_qty", "leaves_qty", "fee", "rebate"):
        value = getattr(report, name)
        assert isinstance(value, Decimal) and value == 0, name
    assert json.loads(encode(report))["fee"] == "0"


def test_client_order_id_is_short_stable_and_distinct() -> None:
    first = make_client_order_id("b05", "0xmarket", "111", "BUY", 7)
    assert first == make_client_order_id("b05", "0xmarket", "111", "BUY", 7)
    assert first.startswith("b05-") and first.endswith("-7")
    assert len(first) <= 24
    others = {
        make_client_order_id("b05", "0xmarket", "111", "SELL", 7),
        make_client_order_id("b05", "0xmarket", "222", "BUY", 7),
        make_client_order_id("b05", "0xother", "111", "BUY", 7),
        make_client_order_id("b05", "0xmarket", "111", "BUY", 8),
        make_client_order_id("b06", "0xmarket", "111", "BUY", 7),
    }
    assert first not in others and len(others) == 5


def test_report_id_is_deterministic_per_order_kind_and_count() -> None:
    assert report_id("b05-abcd1234-1", "fill", 2) == report_id("b05-abcd1234-1", "fill", 2)
    ids = {report_id("b05-abcd1234-1", kind, n) for kind in ("ack", "fill") for n in (1, 2)}
    assert len(ids) == 4


def test_news_item_id_is_stable_per_feed_and_guid() -> None:
    assert news_item_id("https://feed/a", "g1") == news_item_id("https://feed/a", "g1")
    assert news_item_id("https://feed/a", "g1") != news_item_id("https://feed/b", "g1")
    assert news_item_id("https://feed/a", "g1") != news_item_id("https://feed/a", "g2")


def test_control_command_applies_to_its_bot_or_all() -> None:
    one = ControlCommand(command_id="c1", command="pause", bot_id="b03", ts_ns=1)
    every = ControlCommand(command_id="c2", command="halt", bot_id="*", ts_ns=1)
    assert one.applies_to("b03") and not one.applies_to("b04")
    assert every.applies_to("b03") and every.applies_to("b04")
    assert (one.reason, one.issued_by, one.until_ns) == ("", "cli", None)


def test_batch_command_args_default_is_not_shared() -> None:
    first = BatchCommand(command_id="a", command="rank_whales", ts_ns=1)
    second = BatchCommand(command_id="b", command="retrain_model", ts_ns=1)
    assert first.args == {} and first.args is not second.args


def test_dead_letter_keeps_text_readable() -> None:
    letter = DeadLetter.from_bytes(
        "md_ingest.parse",
        "Expected `str` - at `$.market`",
        b'{"event_type":"book","market":1}',
        ts_ns=5,
        topic="md.book",
        key=b"123",
        partition=2,
        offset=41,
    )
    assert letter.payload_encoding == "utf-8"
    assert letter.payload == '{"event_type":"book","market":1}'
    assert (letter.topic, letter.key, letter.partition, letter.offset) == ("md.book", "123", 2, 41)
    assert decode("dlq.market_data", encode(letter)) == letter


def test_dead_letter_base64_for_binary() -> None:
    raw = b"\xff\xfe\x00garbage"
    letter = DeadLetter.from_bytes("chain.decode", "not utf-8", raw, ts_ns=5)
    assert letter.payload_encoding == "base64"
    assert base64.b64decode(letter.payload) == raw
    assert letter.raw_bytes() == raw


def test_dead_letter_accepts_websocket_text() -> None:
    letter = DeadLetter.from_bytes("md_ws", "bad frame", "héllo", ts_ns=1)
    assert letter.payload_encoding == "utf-8" and letter.raw_bytes() == "héllo".encode()


@given(raw=st.binary(max_size=256))
def test_dead_letter_never_loses_bytes(raw: bytes) -> None:
    letter = DeadLetter.from_bytes("any", "reason", raw, ts_ns=1)
    assert decode("dlq.trading", encode(letter)).raw_bytes() == raw


def test_a_dead_letter_of_a_huge_input_fits_the_broker_and_says_what_it_cut() -> None:
    # ~900 KB of characters JSON must escape (\u0001 = 6 bytes each): whole, the dead letter would be
    # ~5.4 MB, far over the broker's 1 MB message limit
    raw = b'{"event_type":"book","x":"' + b"\x01" * 900_000 + b'"}'
    letter = DeadLetter.from_bytes("md.parse", "x" * 50_000, raw, ts_ns=1, key=b"k" * 50_000)
    wire = encode(letter)
    assert len(wire) < 1_000_000
    assert letter.truncated and letter.payload_size == len(raw)
    assert letter.payload_sha256 == hashlib.sha256(raw).hexdigest()
    assert raw.startswith(letter.raw_bytes()) and len(letter.raw_bytes()) == DEAD_LETTER_PAYLOAD_BYTES
    assert len(letter.reason) < 2_100 and letter.key is not None and len(letter.key) < 2_100
    assert decode("dlq.market_data", wire) == letter


def test_a_cut_through_a_multibyte_character_stays_text() -> None:
    raw = b"a" * (DEAD_LETTER_PAYLOAD_BYTES - 1) + "é".encode() * 10  # the cut splits the first é
    letter = DeadLetter.from_bytes("s", "r", raw, ts_ns=1)
    assert letter.payload_encoding == "utf-8" and letter.payload == "a" * (DEAD_LETTER_PAYLOAD_BYTES - 1)
    assert letter.truncated and letter.payload_size == len(raw)


@pytest.mark.parametrize(
    ("kind", "leaves", "final"),
    [
        ("ack", "10", False),
        ("partial_fill", "4", False),
        ("partial_fill", "0", True),  # the last partial fill of an order ends it
        ("fill", "0", True),
        ("cancel", "6", True),
        ("expire", "6", True),
        ("reject", "0", True),
    ],
)
def test_a_report_says_whether_it_finishes_its_order(
    make_intent: Callable[..., OrderIntent], kind: str, leaves: str, final: bool
) -> None:
    report = ExecutionReport.of_order(
        make_intent(),
        Decimal(10),
        kind,
        ts_ns=1,
        leaves_qty=Decimal(leaves),  # type: ignore[arg-type]
    )
    assert report.final is final


def _top(bid: str | None, ask: str | None) -> TopOfBook:
    b, a = (Decimal(bid) if bid else None), (Decimal(ask) if ask else None)
    mid = (b + a) / 2 if b is not None and a is not None else None
    tick = Decimal("0.01")
    return TopOfBook("t", "m", 1, b, a, None, None, mid, None, None, None, tick, False, None, None, None, 1)


def test_a_position_is_marked_at_the_mid_or_within_the_side_left() -> None:
    last = Decimal("0.345")
    assert mark_price(_top("0.40", "0.42"), last) == Decimal("0.41")
    # after a game's end only asks down to 0.001 are left: worth no more than 0.001
    assert mark_price(_top(None, "0.001"), last) == Decimal("0.001")
    assert mark_price(_top(None, "0.90"), last) == last  # a far ask alone proves nothing more
    assert mark_price(_top("0.999", None), last) == Decimal("0.999")
    assert mark_price(_top("0.10", None), last) == last
    assert mark_price(_top(None, None), last) == last
    assert mark_price(_top(None, "0.60"), None) == Decimal("0.60")  # no mark yet: the side there
    assert mark_price(_top(None, None), None) is None
