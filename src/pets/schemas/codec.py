"""The wire codec of every topic: JSON via msgspec, Decimals as strings, one cached decoder per schema type.

    payload = encode(intent)
    intent = decode("order.intent", payload)     # registry name, TopicSpec or the type itself

Decoding raises `msgspec.ValidationError` (a `msgspec.DecodeError`) whose message names the field,
e.g. "Expected `decimal`, got `bool` - at `$.intent.price`": that text is the dead-letter reason.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from pets.schemas.topics import TopicSpec, default_registry

_ENCODER = msgspec.json.Encoder(decimal_format="string")


class SchemaUnavailableError(LookupError):
    """A topic's schema ("module:Type" in topics.yaml) cannot be imported."""


def encode(msg: Any) -> bytes:
    """JSON bytes of a wire message (Decimals as exact strings, e.g. "0.45")."""
    return _ENCODER.encode(msg)


def schema_type_of(spec: TopicSpec) -> Any:
    """The msgspec type of a topic, with an error naming the topic and module when it is missing."""
    try:
        return spec.schema_type()
    except (ImportError, AttributeError) as exc:
        raise SchemaUnavailableError(
            f"topic {spec.name}: schema {spec.schema!r} (topics.yaml) cannot be loaded: {exc}"
        ) from None


@cache
def _decoder_for_type(schema_type: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(schema_type)


@cache
def _decoder_for_topic(name: str) -> msgspec.json.Decoder[Any]:
    return _decoder_for_type(schema_type_of(default_registry().get(name)))


def decoder_for(topic: str | TopicSpec | Any) -> msgspec.json.Decoder[Any]:
    """The cached decoder of a topic given its registry name (unprefixed), its TopicSpec or its type."""
    if isinstance(topic, str):
        return _decoder_for_topic(topic)
    if isinstance(topic, TopicSpec):
        return _decoder_for_type(schema_type_of(topic))
    return _decoder_for_type(topic)


def decode(topic: str | TopicSpec | Any, data: bytes | str) -> Any:
    """Decode one message of `topic`; raises msgspec.ValidationError naming the bad field."""
    return decoder_for(topic).decode(data)


def message_key(spec: TopicSpec, msg: Any) -> bytes | None:
    """The Kafka key of `msg` on `spec`'s topic (the value of its `key` attribute), None if it has none."""
    value = getattr(msg, spec.key, None)
    return None if value is None else str(value).encode()
