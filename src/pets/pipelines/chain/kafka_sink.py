"""chain.fill on Kafka: fills keyed by token and stamped with their block time, dead letters on
dlq.signals, and the read-back of what was published since a time (the follower's restart)."""

from __future__ import annotations

from typing import Any

import msgspec
from kafka import TopicPartition

from pets.pipelines import kafka_io
from pets.schemas.codec import encode
from pets.schemas.control import DeadLetter
from pets.schemas.signals import WalletFill
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

FILL_TOPIC = "chain.fill"
DLQ_TOPIC = "dlq.signals"


class _Key(msgspec.Struct):
    tx_hash: str
    log_index: int
    block_number: int


class KafkaFillSink:
    def __init__(self, settings: Settings) -> None:
        registry = load_topic_registry(settings.config_dir)
        kafka_io.ensure_topics(settings, [FILL_TOPIC, DLQ_TOPIC])
        self.settings = settings
        self.topic = registry.get(FILL_TOPIC).full_name(settings.topic_prefix)
        self.dlq = registry.get(DLQ_TOPIC).full_name(settings.topic_prefix)
        self.producer = kafka_io.producer(settings, linger_ms=5, client_id="pets-chain")
        self.sent = 0

    def send(self, fill: WalletFill) -> None:
        self.producer.send(
            self.topic, key=fill.asset_id.encode(), value=encode(fill), timestamp_ms=fill.ts_ms
        )
        self.sent += 1

    def dead_letter(self, letter: DeadLetter) -> None:
        key = letter.key.encode() if letter.key else None
        self.producer.send(self.dlq, key=key, value=encode(letter))

    def flush(self) -> None:
        self.producer.flush(30)

    def published_since(self, ts_ms: int) -> dict[str, int]:
        """ "tx hash:log index" -> block of every fill on the topic stamped at or after `ts_ms`."""
        consumer = kafka_io.consumer(self.settings)
        try:
            parts = [TopicPartition(self.topic, p) for p in consumer.partitions_for_topic(self.topic) or ()]
            if not parts:
                return {}
            consumer.assign(parts)
            starts = consumer.offsets_for_times({tp: ts_ms for tp in parts})
            ends = consumer.end_offsets(parts)
            todo: dict[Any, int] = {}
            for tp in parts:
                found = starts.get(tp)
                if found is None or found.offset >= ends[tp]:
                    continue
                consumer.seek(tp, found.offset)
                todo[tp] = ends[tp]
            keys: dict[str, int] = {}
            decoder = msgspec.json.Decoder(_Key)
            while todo:
                for tp, records in consumer.poll(timeout_ms=1000).items():
                    for record in records:
                        if record.offset < todo.get(tp, 0):
                            k = decoder.decode(record.value)
                            keys[f"{k.tx_hash}:{k.log_index}"] = k.block_number
                    if tp in todo and consumer.position(tp) >= todo[tp]:
                        del todo[tp]
            return keys
        finally:
            consumer.close()

    def close(self) -> None:
        self.producer.flush(30)
        self.producer.close()
