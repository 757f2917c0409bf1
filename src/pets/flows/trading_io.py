"""Kafka edges shared by the trading flows (bots, risk): decode several input topics, route outputs.

Inputs arrive as KafkaSourceMessages of several topics on one source; each is decoded with its
topic's schema from the registry, and what cannot be decoded becomes a DeadLetter naming the topic,
the offset and msgspec's reason (which names the bad field). Outputs are `Routed` items (a registry
topic name, a key, a wire message) that one sink encodes and produces to the prefixed topic, so a
flow has one output step and a test sink sees exactly what would reach each topic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSourceMessage
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from pets.flows.kafka_source import SINK_CONFIG, MultiPartitionKafkaSource
from pets.flows.recovery import flow_store
from pets.schemas.codec import decoder_for, encode
from pets.schemas.control import DeadLetter
from pets.schemas.topics import TopicRegistry, load_topic_registry
from pets.settings import DEFAULT_MAX_MESSAGE_BYTES, Settings

log = logging.getLogger("pets.flows")


def oversize(topic: str | None, size: int, limit: int) -> str:
    """The dead-letter reason of an input over the size limit (PETS_MAX_MESSAGE_BYTES)."""
    return f"{topic}: message of {size} bytes exceeds the input limit of {limit} bytes (not parsed)"


def venue_time_fault(ts_ms: int, wall_ms: int, tolerance_ms: int) -> str | None:
    """Why a venue timestamp cannot be true, or None. Only the wall clock bounds it: a replay moves
    venue time back and forth legitimately, but never past now (plus `tolerance_ms` of clock skew),
    and a stamp in the past cannot move a clock that only goes forward."""
    if ts_ms > wall_ms + tolerance_ms:
        return (
            f"timestamp {ts_ms} ms is {(ts_ms - wall_ms) / 1000:.0f} s ahead of the wall clock "
            f"(tolerance {tolerance_ms / 1000:g} s, PETS_CLOCK_TOLERANCE_S)"
        )
    return None


class ClockCheck:
    """Dead-letters decoded messages whose venue time is implausible (`venue_time_fault`), so one bad
    stamp cannot move a flow's clock; logs a jump of more than the tolerance between consecutive
    times (a replay of an earlier file, a venue clock reset), which passes."""

    def __init__(self, source: str, tolerance_s: float, stamp: Callable[[Any], int | None]) -> None:
        self.source = source
        self.tolerance_ms = int(tolerance_s * 1000)
        self.stamp = stamp  # the venue time (ms) of a decoded message, None when it carries none
        self.previous_ms = 0

    def __call__(self, item: Any) -> Any:
        if isinstance(item, DeadLetter):
            return item
        ts_ms = self.stamp(item)
        if ts_ms is None:
            return item
        fault = venue_time_fault(ts_ms, time.time_ns() // 1_000_000, self.tolerance_ms)
        if fault is not None:
            return DeadLetter.from_bytes(
                self.source, f"{type(item).__name__}: {fault}", encode(item), ts_ns=time.time_ns()
            )
        if self.previous_ms and abs(ts_ms - self.previous_ms) > self.tolerance_ms:
            log.warning(
                "%s: venue time jumped %+.0f s (%d -> %d ms)",
                self.source, (ts_ms - self.previous_ms) / 1000, self.previous_ms, ts_ms,
            )  # fmt: skip
        self.previous_ms = ts_ms
        return item


def log_dead_letter(step_id: str, letter: DeadLetter) -> None:
    """One log line per dead letter (an `op.inspect` of a flow's dead letters); the reason is cut to
    one line and the payload never goes to the log."""
    reason = letter.reason.splitlines()[0][:300] if letter.reason else ""
    log.warning(
        "dead letter from %s (%s@%s, %s bytes): %s",
        letter.source, letter.topic, letter.offset, letter.payload_size, reason,
    )  # fmt: skip


class Routed(NamedTuple):
    topic: str  # registry name, without the prefix ("order.exec")
    key: str
    message: Any  # the wire message (a msgspec Struct of the topic's schema)


class TopicDecoder:
    """Decodes messages of the given registry topics (prefixed names on the wire) into their Structs."""

    def __init__(
        self,
        registry: TopicRegistry,
        prefix: str,
        names: Iterable[str],
        source: str,
        max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.decoders = {}
        for name in names:
            spec = registry.get(name)
            self.decoders[spec.full_name(prefix)] = decoder_for(spec)

    def __call__(self, message: KafkaSourceMessage[Any, Any]) -> Any:
        raw = message.value if isinstance(message.value, bytes) else bytes(message.value or b"")
        if len(raw) > self.max_bytes:  # checked before parsing: a poison message costs no decode
            return self.dead(message, raw, oversize(message.topic, len(raw), self.max_bytes))
        decoder = self.decoders.get(message.topic or "")
        if decoder is None:
            return self.dead(message, raw, f"unexpected topic {message.topic!r}")
        try:
            return decoder.decode(raw)
        except msgspec.DecodeError as exc:
            return self.dead(message, raw, f"{message.topic}: {exc}")

    def dead(self, message: KafkaSourceMessage[Any, Any], raw: bytes, reason: str) -> DeadLetter:
        return DeadLetter.from_bytes(
            self.source, reason, raw, ts_ns=time.time_ns(), topic=message.topic, key=message.key,
            partition=message.partition, offset=message.offset,
        )  # fmt: skip


def kafka_source(
    settings: Settings, names: Iterable[str], tail: bool = True, order_log: Path | None = None
) -> MultiPartitionKafkaSource:
    """Every partition of the given registry topics through one consumer, or in a cluster one
    Bytewax partition per partition index (see kafka_source.py); `order_log`: replay after a resume
    in the order handed on before it."""
    registry = load_topic_registry(settings.config_dir)
    topics = [registry.get(name).full_name(settings.topic_prefix) for name in names]
    return MultiPartitionKafkaSource(
        [settings.require_kafka()], topics, tail=tail, order_log=order_log, split=settings.flow_workers > 1
    )


def order_log(settings: Settings, flow_name: str) -> Path:
    """The order log of a flow whose decisions depend on how its input topics interleave (bots, risk,
    executor): after a crash its input since the snapshot is replayed in the order it was handed on,
    so it decides and publishes the same again. Inside the flow's recovery store (`pets flow run`'s),
    so that a new store never replays a log of an older one."""
    return flow_store(settings.recovery_dir, flow_name, settings.flow_process_id) / "input_order.log"


class RoutedKafkaSink(DynamicSink[Routed]):
    """Encodes `Routed` items and produces each to its prefixed topic, keyed; what goes out is counted
    in the Prometheus metrics (pets.observability.metrics)."""

    def __init__(self, settings: Settings) -> None:
        from pets.schemas.config import load_config

        self._kafka = KafkaSink([settings.require_kafka()], None, add_config=dict(SINK_CONFIG))
        registry = load_topic_registry(settings.config_dir)
        self._names = {spec.name: spec.full_name(settings.topic_prefix) for spec in registry.topics}
        self._zones = load_config(settings.config_dir).zones.zones

    def build(self, step_id: str, worker_index: int, worker_count: int) -> StatelessSinkPartition[Routed]:
        from pets.observability.metrics import TradingObserver

        inner = self._kafka.build(step_id, worker_index, worker_count)
        return _RoutedPartition(inner, self._names, TradingObserver(self._zones))


class _RoutedPartition(StatelessSinkPartition[Routed]):
    def __init__(
        self,
        inner: StatelessSinkPartition[KafkaSinkMessage[Any, Any]],
        names: dict[str, str],
        observe: Callable[[list[Routed]], None],
    ) -> None:
        self._inner = inner
        self._names = names
        self._observe = observe

    def write_batch(self, items: list[Routed]) -> None:
        names = self._names
        self._observe(items)
        self._inner.write_batch([
            KafkaSinkMessage(key=item.key.encode(), value=encode(item.message), topic=names[item.topic])
            for item in items
        ])  # fmt: skip

    def close(self) -> None:
        self._inner.close()


def read_topics(settings: Settings, names: Iterable[str]) -> Iterator[Any]:
    """Every message currently on the given topics (all partitions, from the beginning up to the end
    offsets at the time of the call), decoded with each topic's schema; undecodable ones are skipped
    (they were dead-lettered when they were produced)."""
    from kafka import TopicPartition

    from pets.pipelines.kafka_io import consumer

    registry = load_topic_registry(settings.config_dir)
    decoders = {}
    for name in names:
        spec = registry.get(name)
        decoders[spec.full_name(settings.topic_prefix)] = decoder_for(spec)
    client = consumer(settings)
    try:
        partitions = [
            TopicPartition(topic, part)
            for topic in decoders
            for part in client.partitions_for_topic(topic) or ()
        ]
        if not partitions:
            return
        client.assign(partitions)
        client.seek_to_beginning(*partitions)
        ends = client.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > client.position(tp)}
        while remaining:
            for tp, records in client.poll(timeout_ms=500).items():
                decoder = decoders[tp.topic]
                for record in records:
                    try:
                        yield decoder.decode(record.value)
                    except msgspec.DecodeError:
                        continue
                if client.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        client.close()
