"""The real Kafka broker started by `pets infra up`, through the kafka_io helpers."""

from __future__ import annotations

import uuid

import pytest
from kafka import TopicPartition

from pets.pipelines.kafka_io import broker_unready, consumer, ensure_topics, existing_topics, producer
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

pytestmark = pytest.mark.integration


def test_broker_answers_metadata(kafka_bootstrap: str) -> None:
    assert broker_unready(kafka_bootstrap, timeout_ms=5_000) is None


def test_nothing_listening_is_reported_unready() -> None:
    from pets.infra.procs import free_port

    reason = broker_unready(f"127.0.0.1:{free_port()}", timeout_ms=500)
    assert reason is not None and reason.startswith("no connection")


def test_ensure_topics_creates_prefixed_registry_topics_once(prefixed_settings: Settings) -> None:
    registry = load_topic_registry(prefixed_settings.config_dir)
    prefix = prefixed_settings.topic_prefix

    first = ensure_topics(prefixed_settings, ["md.book", "bot.control", "md.markets"])
    second = ensure_topics(prefixed_settings, ["md.book", "bot.control", "md.markets"])

    names = [f"{prefix}md.book", f"{prefix}bot.control", f"{prefix}md.markets"]
    assert first == dict.fromkeys(names, True)
    assert second == dict.fromkeys(names, False)
    on_broker = existing_topics(prefixed_settings)
    for base in ("md.book", "bot.control", "md.markets"):
        assert on_broker[f"{prefix}{base}"] == registry.get(base).partitions


def test_unknown_topic_name_is_refused(prefixed_settings: Settings) -> None:
    with pytest.raises(KeyError, match=r"unknown topic 'md\.nope'"):
        ensure_topics(prefixed_settings, ["md.nope"])


def test_produce_consume_round_trip(prefixed_settings: Settings) -> None:
    ensure_topics(prefixed_settings, ["md.book"])
    topic = f"{prefixed_settings.topic_prefix}md.book"
    sent = [(f"asset-{i % 3}".encode(), uuid.uuid4().hex.encode()) for i in range(20)]

    writer = producer(prefixed_settings)
    for key, value in sent:
        writer.send(topic, key=key, value=value)
    writer.flush(timeout=10)
    writer.close()

    reader = consumer(prefixed_settings)
    partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
    reader.assign(partitions)
    reader.seek_to_beginning(*partitions)
    received: list[tuple[bytes, bytes]] = []
    for _ in range(40):
        for records in reader.poll(timeout_ms=250).values():
            received.extend((r.key, r.value) for r in records)
        if len(received) >= len(sent):
            break
    reader.close()

    assert sorted(received) == sorted(sent)
    # Same key -> same partition -> the order of each key's messages is kept.
    for key in {k for k, _ in sent}:
        assert [v for k, v in received if k == key] == [v for k, v in sent if k == key]
