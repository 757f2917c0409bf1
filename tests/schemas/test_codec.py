"""The wire codec: every topic's messages survive encode -> decode exactly, errors name the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import msgspec.inspect
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pets.schemas.codec import (
    SchemaUnavailableError,
    decode,
    decoder_for,
    encode,
    message_key,
    schema_type_of,
)
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderIntent
from pets.schemas.topics import TopicSpec, default_registry

ROUND_TRIP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ROUND_TRIP
@given(data=st.data())
def test_every_topic_round_trips_exactly(
    topic: tuple[TopicSpec, Any], wire_strategy: Callable[[Any], Any], data: st.DataObject
) -> None:
    spec, schema_type = topic
    msg = data.draw(wire_strategy(schema_type))
    payload = encode(msg)
    decoded = decode(spec.name, payload)
    assert decoded == msg
    assert type(decoded) is type(msg)
    # Same bytes again: Decimal exponents ("0.10" vs "0.1") and field order survive, not only equality.
    assert encode(decoded) == payload


@ROUND_TRIP
@given(data=st.data())
def test_every_decimal_is_a_json_string(
    topic: tuple[TopicSpec, Any], wire_strategy: Callable[[Any], Any], data: st.DataObject
) -> None:
    _, schema_type = topic
    msg = data.draw(wire_strategy(schema_type))
    plain = json.loads(encode(msg))

    def walk(value: Any, wire: Any) -> None:
        if isinstance(value, Decimal):
            assert wire == str(value), f"Decimal {value!r} must travel as the string {str(value)!r}"
        elif isinstance(value, msgspec.Struct):
            for field in msgspec.structs.fields(value):
                walk(getattr(value, field.name), wire[field.encode_name])
        elif isinstance(value, (list, tuple)):
            for item, wire_item in zip(value, wire, strict=True):
                walk(item, wire_item)

    walk(msg, plain)


def test_decimal_wire_text_is_exact(make_intent: Callable[..., OrderIntent]) -> None:
    intent = make_intent(price=Decimal("0.45"), size=Decimal("10.10"))
    wire = json.loads(encode(intent))
    assert wire["price"] == "0.45"
    assert wire["size"] == "10.10"
    assert wire["tick_size"] == "0.01"
    # A JSON number from a foreign producer is read exactly too (no binary float in between).
    raw = encode(intent).replace(b'"price":"0.45"', b'"price":0.45')
    assert decode("order.intent", raw).price == Decimal("0.45")


def test_decoder_is_cached_per_topic_and_type() -> None:
    assert decoder_for("order.intent") is decoder_for("order.intent")
    assert decoder_for("order.intent") is decoder_for(OrderIntent)
    spec = default_registry().get("order.intent")
    assert decoder_for(spec) is decoder_for(OrderIntent)
    assert decoder_for("signal.news") is decoder_for("signal.whale")  # both carry Signal


def test_decode_accepts_str_and_bytes(make_intent: Callable[..., OrderIntent]) -> None:
    intent = make_intent()
    payload = encode(intent)
    assert decode(OrderIntent, payload.decode()) == intent


def test_wrong_type_names_the_field(make_intent: Callable[..., OrderIntent]) -> None:
    approved = ApprovedOrder(intent=make_intent(), size=Decimal("5"), approved_ns=1, sequence=7)
    wire = json.loads(encode(approved))
    wire["intent"]["price"] = True
    with pytest.raises(msgspec.ValidationError, match=r"\$\.intent\.price"):
        decode("order.exec", json.dumps(wire))
    wire = json.loads(encode(approved))
    wire["sequence"] = "7"
    with pytest.raises(msgspec.ValidationError, match=r"Expected `int`, got `str` - at `\$\.sequence`"):
        decode("order.exec", json.dumps(wire))


def test_bad_literal_and_missing_field_are_rejected(make_intent: Callable[..., OrderIntent]) -> None:
    wire = json.loads(encode(make_intent()))
    with pytest.raises(msgspec.ValidationError, match=r"\$\.side"):
        decode("order.intent", json.dumps({**wire, "side": "HOLD"}))
    del wire["created_ns"]
    with pytest.raises(msgspec.ValidationError, match="missing required field `created_ns`"):
        decode("order.intent", json.dumps(wire))


def test_not_json_is_a_decode_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        decode("order.intent", b"\xff{not json")


def test_unknown_topic_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown topic 'order\.nope'.*order\.intent"):
        decoder_for("order.nope")


def test_missing_schema_module_names_topic_and_module() -> None:
    spec = TopicSpec(
        name="x.test",
        partitions=1,
        key="k",
        retention_ms=-1,
        schema="pets.schemas.nope:Thing",
        description="",
    )
    with pytest.raises(SchemaUnavailableError, match=r"topic x\.test: schema 'pets\.schemas\.nope:Thing'"):
        schema_type_of(spec)
    missing_attr = msgspec.structs.replace(spec, schema="pets.schemas.orders:Nope")
    with pytest.raises(SchemaUnavailableError, match="Nope"):
        schema_type_of(missing_attr)


def test_message_key_follows_the_registry(make_intent: Callable[..., OrderIntent]) -> None:
    registry = default_registry()
    intent = make_intent(market="0xmarket")
    approved = ApprovedOrder(intent=intent, size=Decimal("5"), approved_ns=1, sequence=1)
    assert message_key(registry.get("order.intent"), intent) == b"0xmarket"
    assert message_key(registry.get("order.exec"), approved) == b"0xmarket"
    report = ExecutionReport(
        report_id="r",
        client_order_id="c",
        venue_order_id=None,
        bot_id="b01",
        market="m",
        asset_id="a",
        side="BUY",
        kind="ack",
        order_price=Decimal("0.5"),
        order_size=Decimal("5"),
        ts_ns=1,
        source_ts_ms=1,
    )
    assert message_key(registry.get("pnl.snapshot"), report) == b"b01"
    assert message_key(registry.get("md.tob"), object()) is None


def test_every_message_carries_its_topic_key(
    topic: tuple[TopicSpec, Any],
    struct_types: Callable[[Any], list[type[msgspec.Struct]]],
) -> None:
    """Bytewax's Kafka sink partitions by key only: a message without its key loses per-key ordering."""
    spec, schema_type = topic
    for cls in struct_types(schema_type):
        info = msgspec.inspect.type_info(cls)
        assert isinstance(info, msgspec.inspect.StructType)
        fields = {f.name: f for f in info.fields}
        if isinstance(getattr(cls, spec.key, None), property):
            continue
        field = fields.get(spec.key)
        assert field is not None, f"{spec.name}: {cls.__name__} has no {spec.key!r} to key messages by"
        optional = isinstance(field.type, msgspec.inspect.UnionType) and any(
            isinstance(t, msgspec.inspect.NoneType) for t in field.type.types
        )
        assert field.required and not optional, f"{spec.name}: {cls.__name__}.{spec.key} may be missing"
