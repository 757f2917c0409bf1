"""Reading a topic of the real broker back in tests: every partition from the beginning."""

from __future__ import annotations

import time
from collections.abc import Callable

from pets.settings import Settings


def consume_until(
    settings: Settings, topic: str, until: Callable[[list[bytes]], bool], timeout_s: float = 60
) -> list[bytes]:
    """The values of `topic` (the settings' prefix added) until `until(values)` or the timeout."""
    from kafka import TopicPartition

    from pets.pipelines.kafka_io import consumer

    kafka = consumer(settings)
    try:
        full = f"{settings.topic_prefix}{topic}"
        kafka.assign([TopicPartition(full, p) for p in kafka.partitions_for_topic(full) or ()])
        kafka.seek_to_beginning()
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while not until(values) and time.monotonic() < deadline:
            for records in kafka.poll(timeout_ms=200).values():
                values.extend(r.value for r in records)
        return values
    finally:
        kafka.close()
