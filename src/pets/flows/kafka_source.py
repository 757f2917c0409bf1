"""A Bytewax Kafka input that reads every partition of its topics with ONE consumer.

Bytewax 0.21's `KafkaSource` builds one consumer per Kafka partition and polls them in turn with a
1 ms timeout each, so a flow reading ~20 partitions waits up to ~20 ms per polling round, at every
hop. `MultiPartitionKafkaSource` has a single Bytewax partition ("all") whose one librdkafka consumer
is assigned every partition of the topics: one fetch covers them all and a message is handed over
as soon as it arrives. Per-partition order is kept (one consumer, one queue per partition).

Like the stock source it commits nothing to a consumer group: its snapshot is the next offset of
every Kafka partition, `{(topic, partition): offset}`, kept in Bytewax's recovery store, and a
resume assigns each partition at its snapshot offset (partitions unknown to the snapshot start at
`starting_offset`). Items are the stock `KafkaSourceMessage`s; a consumer error raises
`RuntimeError` (or, with `raise_on_errors=False`, becomes a `KafkaError` item), and a topic that
cannot be listed raises `RuntimeError` from `list_parts`, with the stock messages. Partitions added
to a topic while the flow runs are picked up within `refresh_s`: a watcher thread lists them, so
the worker never waits on a metadata request (a slow one stalled every flow for up to 0.5 s).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition
from confluent_kafka import KafkaError as ConfluentKafkaError

from pets.pipelines.kafka_io import KAFKA_LOG

SourceMessage = KafkaSourceMessage[bytes | None, bytes | None]
Item = SourceMessage | KafkaError[bytes | None, bytes | None]
Offsets = dict[tuple[str, int], int]  # (topic, partition) -> offset of the next message to read
PART = "all"
MIN_REFRESH_S = 0.01
SINK_CONFIG: dict[str, Any] = {"linger.ms": "1", "logger": KAFKA_LOG}  # the flows' Kafka producers


class MultiPartitionKafkaSource(FixedPartitionedSource[Item, Offsets]):
    """All partitions of `topics` through one consumer. `batch_size`: most messages per
    `next_batch`; `poll_timeout_s`: how long `next_batch` may wait for a first message (librdkafka
    wakes it as soon as one arrives). No `next_awake`: after an empty batch Bytewax already parks
    the worker 1 ms before asking again, so an idle source does not spin."""

    def __init__(
        self,
        brokers: Iterable[str],
        topics: Iterable[str],
        tail: bool = True,
        starting_offset: int = OFFSET_BEGINNING,
        add_config: dict[str, str] | None = None,
        batch_size: int = 1000,
        raise_on_errors: bool = True,
        poll_timeout_s: float = 0.001,
        refresh_s: float = 10.0,
        metadata_timeout_s: float = 10.0,
    ) -> None:
        if isinstance(brokers, str) or isinstance(topics, str):
            raise TypeError("brokers and topics must be iterables of strings, not a string")
        self._brokers = list(brokers)
        self._topics = list(topics)
        self._tail = tail
        self._starting_offset = starting_offset
        self._add_config = dict(add_config or {})
        self._batch_size = batch_size
        self._raise_on_errors = raise_on_errors
        self._poll_timeout_s = poll_timeout_s
        self._refresh_s = refresh_s
        self._metadata_timeout_s = metadata_timeout_s

    def list_parts(self) -> list[str]:
        """One Bytewax partition; listing the topics here fails early, as the stock source does."""
        consumer = Consumer(self._config())
        try:
            _partitions(consumer, self._topics, self._metadata_timeout_s)
        finally:
            consumer.close()
        return [PART]

    def build_part(self, step_id: str, for_part: str, resume_state: Offsets | None) -> _Partition:
        if resume_state is not None:
            unknown = {topic for topic, _ in resume_state} - set(self._topics)
            if unknown:
                raise ValueError(f"can't resume {step_id!r} from other Kafka topics: {sorted(unknown)}")
        return _Partition(
            Consumer(self._config()), self._topics, dict(resume_state or {}), self._starting_offset,
            tail=self._tail, batch_size=self._batch_size, raise_on_errors=self._raise_on_errors,
            poll_timeout_s=self._poll_timeout_s, refresh_s=self._refresh_s,
            metadata_timeout_s=self._metadata_timeout_s,
        )  # fmt: skip

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap.servers": ",".join(self._brokers),
            "logger": KAFKA_LOG,
            # offsets live in Bytewax's recovery store; assign() does not join the group
            "group.id": "BYTEWAX_IGNORED",
            "enable.auto.commit": False,
            "enable.partition.eof": not self._tail,
        }
        config.update(self._add_config)
        return config


class _Partition(StatefulSourcePartition[Item, Offsets]):
    def __init__(
        self,
        consumer: Consumer,
        topics: list[str],
        offsets: Offsets,
        starting_offset: int,
        *,
        tail: bool,
        batch_size: int,
        raise_on_errors: bool,
        poll_timeout_s: float,
        refresh_s: float,
        metadata_timeout_s: float,
    ) -> None:
        self._consumer = consumer
        self._topics = topics
        self._offsets = offsets
        self._starting_offset = starting_offset
        self._tail = tail
        self._batch_size = batch_size
        self._raise_on_errors = raise_on_errors
        self._poll_timeout_s = poll_timeout_s
        self._refresh_s = refresh_s
        self._metadata_timeout_s = metadata_timeout_s
        self._assigned: set[tuple[str, int]] = set()
        self._at_end: set[tuple[str, int]] = set()  # tail=False: partitions that reached their end
        self._stop = False
        self._assign_new(_partitions(consumer, topics, metadata_timeout_s))
        self._found: list[tuple[str, int]] | None = None  # the watcher's latest listing, not yet applied
        self._closing = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="kafka-partition-watcher", daemon=True)
        if tail:
            self._watcher.start()

    def _watch(self) -> None:
        while not self._closing.wait(max(self._refresh_s, MIN_REFRESH_S)):
            try:
                self._found = _partitions(self._consumer, self._topics, self._metadata_timeout_s)
            except RuntimeError:  # metadata unavailable just now (or closing): look again later
                continue

    def _assign_new(self, found: list[tuple[str, int]]) -> None:
        """Assign the partitions not yet assigned, each at its snapshot offset (or the start)."""
        new = [tp for tp in found if tp not in self._assigned]
        if new:
            self._consumer.incremental_assign([
                TopicPartition(topic, part, self._offsets.get((topic, part), self._starting_offset))
                for topic, part in new
            ])  # fmt: skip
            self._assigned.update(new)

    def next_batch(self) -> list[Item]:
        if self._stop:
            raise StopIteration()
        found = self._found
        if found is not None:
            self._found = None
            self._assign_new(found)
        batch: list[Item] = []
        for msg in self._consumer.consume(self._batch_size, self._poll_timeout_s):
            error = msg.error()
            topic, part = msg.topic() or "", msg.partition() or 0
            if error is not None and error.code() == ConfluentKafkaError._PARTITION_EOF:
                self._at_end.add((topic, part))
                continue
            if error is not None and self._raise_on_errors:
                raise RuntimeError(f"error consuming from Kafka topic `{topic!r}`: {error}")
            item = _message(msg)
            batch.append(item if error is None else KafkaError(error, item))
            if error is None:
                self._offsets[(topic, part)] = (msg.offset() or 0) + 1  # resume after this one
        # like the stock source: stop on the next call, so this batch is still emitted
        self._stop = not self._tail and self._at_end >= self._assigned
        return batch

    def snapshot(self) -> Offsets:
        return dict(self._offsets)

    def close(self) -> None:
        self._closing.set()
        if self._watcher.is_alive():
            self._watcher.join(self._metadata_timeout_s)
        self._consumer.close()


def _message(msg: Message) -> SourceMessage:
    headers: Any = msg.headers() or []  # a list of (name, bytes) pairs, as the stock source passes
    return KafkaSourceMessage(
        key=msg.key(), value=msg.value(), topic=msg.topic(), headers=headers,
        latency=msg.latency(), offset=msg.offset(), partition=msg.partition(), timestamp=msg.timestamp(),
    )  # fmt: skip


def _partitions(consumer: Consumer, topics: list[str], timeout_s: float) -> list[tuple[str, int]]:
    """Every (topic, partition) of `topics`; a topic that cannot be listed raises RuntimeError with
    the stock source's message."""
    found: list[tuple[str, int]] = []
    for topic in topics:
        try:
            metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        except KafkaException as exc:
            raise RuntimeError(f"error listing partitions for Kafka topic `{topic!r}`: {exc}") from exc
        if metadata.error is not None:
            msg = f"error listing partitions for Kafka topic `{topic!r}`: {metadata.error.str()}"
            raise RuntimeError(msg)
        found.extend((topic, part) for part in sorted(metadata.partitions))
    return found
