"""The Kafka FrameSink: md.book events keyed by asset id, bad frames to dlq.market_data.

Each md.book message is exactly one event's bytes; headers say where it came from
(`pets-origin`: ws | rest | pets) and when we received it (`pets-recv-ns`), so a consumer can tell a
resync snapshot from a venue frame without changing the venue's shapes. A send that fails is
counted and `flush()` raises: losing frames silently is the one thing ingestion must not do.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaProducer

from pets.pipelines import kafka_io
from pets.pipelines.polymarket.frames import MarketEvent, Origin
from pets.schemas.codec import encode
from pets.schemas.control import DeadLetter
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

log = logging.getLogger(__name__)

BOOK_TOPIC = "md.book"
DLQ_TOPIC = "dlq.market_data"
ORIGIN_HEADER = "pets-origin"
RECV_NS_HEADER = "pets-recv-ns"


class FrameDeliveryError(RuntimeError):
    """The broker did not take some md.book or dead-letter messages."""


class KafkaFrameSink:
    def __init__(self, producer: KafkaProducer, book_topic: str, dlq_topic: str, *, source: str) -> None:
        self.producer = producer
        self.book_topic = book_topic
        self.dlq_topic = dlq_topic
        self.source = source
        self.produced = 0
        self.dead_lettered = 0
        self.failed = 0

    @classmethod
    def from_settings(cls, settings: Settings, *, source: str, **producer_config: Any) -> KafkaFrameSink:
        """A sink on the registry's md.book / dlq.market_data under the settings' topic prefix."""
        registry = load_topic_registry(settings.config_dir)
        kafka_io.ensure_topics(settings, [BOOK_TOPIC, DLQ_TOPIC])
        producer = kafka_io.producer(settings, linger_ms=5, **producer_config)
        return cls(
            producer,
            registry.get(BOOK_TOPIC).full_name(settings.topic_prefix),
            registry.get(DLQ_TOPIC).full_name(settings.topic_prefix),
            source=source,
        )

    def on_event(self, event: MarketEvent, recv_ns: int, origin: Origin) -> None:
        headers = [(ORIGIN_HEADER, origin.encode()), (RECV_NS_HEADER, str(recv_ns).encode())]
        key = event.key.encode()
        future = self.producer.send(self.book_topic, value=event.payload, key=key, headers=headers)
        future.add_errback(self._on_error)
        self.produced += 1

    def on_dead_letter(self, reason: str, payload: bytes, recv_ns: int) -> None:
        letter = DeadLetter.from_bytes(self.source, reason, payload, ts_ns=recv_ns)
        future = self.producer.send(self.dlq_topic, value=encode(letter), key=self.source.encode())
        future.add_errback(self._on_error)
        self.dead_lettered += 1

    def flush(self) -> None:
        self.producer.flush()
        if self.failed:
            raise FrameDeliveryError(f"{self.failed} message(s) to {self.book_topic}/{self.dlq_topic} failed")

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.producer.close()

    def _on_error(self, exc: BaseException) -> None:
        self.failed += 1
        log.error("producing to Kafka failed: %r", exc)
