"""`pets topics create|list|tail`: the registry topics (config/topics.yaml) on the Kafka broker.

Every name gets ``$PETS_TOPIC_PREFIX`` in front, so a prefix gives an isolated set of topics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import msgspec

from pets.cli import settings_from_env
from pets.schemas.topics import TopicRegistry, load_topic_registry
from pets.settings import Settings


@contextmanager
def _kafka_errors() -> Iterator[None]:
    """Kafka and settings failures as clean CLI errors."""
    from kafka.errors import KafkaError

    from pets.settings import SettingsError

    try:
        yield
    except (KafkaError, SettingsError) as exc:
        raise click.ClickException(f"{exc} (is the broker up? `pets infra status`)") from None


def _registry(settings: Settings) -> TopicRegistry:
    try:
        return load_topic_registry(settings.config_dir)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"topic registry: {exc}") from None


@click.group()
def topics() -> None:
    """Kafka topics of the registry, under $PETS_TOPIC_PREFIX."""


@topics.command()
def create() -> None:
    """Create every registry topic that is missing (partitions, retention.ms, cleanup.policy)."""
    from pets.pipelines.kafka_io import ensure_topics

    settings = settings_from_env()
    registry = _registry(settings)
    with _kafka_errors():
        created = ensure_topics(settings)
    for spec in registry.topics:
        name = spec.full_name(settings.topic_prefix)
        what = "created" if created[name] else "exists"
        click.echo(
            f"{name}: {what} (partitions={spec.partitions} retention.ms={spec.retention_ms} "
            f"cleanup.policy={spec.cleanup_policy})"
        )


@topics.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per topic, one per line.")
def list_topics(as_json: bool) -> None:
    """Registry topics and whether they exist on the broker (with their partition counts)."""
    from pets.pipelines.kafka_io import existing_topics

    settings = settings_from_env()
    registry = _registry(settings)
    with _kafka_errors():
        on_broker = existing_topics(settings)
    for spec in registry.topics:
        name = spec.full_name(settings.topic_prefix)
        row = {
            "name": name,
            "exists": name in on_broker,
            "partitions": spec.partitions,
            "broker_partitions": on_broker.get(name),
            "schema": spec.schema,
        }
        if as_json:
            click.echo(json.dumps(row))
        else:
            state = f"exists ({on_broker[name]} partitions)" if name in on_broker else "missing"
            click.echo(f"{name:<40} {state:<24} {spec.schema}")


def _decoder(schema: str, schema_type: Any) -> tuple[Any, str | None]:
    """A msgspec decoder for the topic's schema, or None and why (schema modules come and go)."""
    try:
        return msgspec.json.Decoder(schema_type()), None
    except (ImportError, AttributeError, TypeError) as exc:
        return None, f"schema {schema} unavailable: {exc}"


@topics.command()
@click.argument("name")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest message (default: only new ones).")
@click.option("--max", "max_messages", type=click.IntRange(min=1), help="Stop after N messages.")
@click.option("--timeout", type=click.FloatRange(min=0), help="Stop after S seconds (default: follow).")
def tail(name: str, from_beginning: bool, max_messages: int | None, timeout: float | None) -> None:
    """Print the messages of registry topic NAME decoded by its schema, one JSON per line.

    A message that does not decode is printed raw with the decode error.
    """
    from kafka import TopicPartition

    from pets.pipelines.kafka_io import consumer

    settings = settings_from_env()
    registry = _registry(settings)
    base = name.removeprefix(settings.topic_prefix) if settings.topic_prefix else name
    try:
        spec = registry.get(base)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    topic = spec.full_name(settings.topic_prefix)
    decoder, schema_error = _decoder(spec.schema, spec.schema_type)
    deadline = None if timeout is None else time.monotonic() + timeout
    with _kafka_errors():
        reader = consumer(settings)
        try:
            partitions = reader.partitions_for_topic(topic)
            if not partitions:
                raise click.ClickException(f"topic {topic} is not on the broker: run `pets topics create`")
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            reader.assign(assigned)
            if from_beginning:
                reader.seek_to_beginning(*assigned)
            else:
                reader.seek_to_end(*assigned)
            for tp in assigned:  # resolve the start offsets now, not at the first poll
                reader.position(tp)
            printed = 0
            while max_messages is None or printed < max_messages:
                wait_ms = 500
                if deadline is not None:
                    wait_ms = min(wait_ms, int((deadline - time.monotonic()) * 1000))
                    if wait_ms <= 0:
                        break
                room = max_messages - printed if max_messages else 500
                batch = reader.poll(timeout_ms=wait_ms, max_records=room)
                for records in batch.values():
                    for record in records:
                        click.echo(_render(record, spec.schema, decoder, schema_error))
                        printed += 1
        except KeyboardInterrupt:
            pass
        finally:
            reader.close()


def _render(record: Any, schema: str, decoder: Any, schema_error: str | None) -> str:
    envelope: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode(errors="backslashreplace") if record.key is not None else None,
        "timestamp_ms": record.timestamp,
    }
    if record.value is None:  # a tombstone on a compacted topic
        envelope["value"] = None
        return msgspec.json.encode(envelope).decode()
    raw: bytes = record.value
    error = schema_error
    if decoder is not None:
        try:
            envelope["value"] = decoder.decode(raw)
        except msgspec.DecodeError as exc:
            error = f"does not decode as {schema}: {exc}"
    if error is not None:
        envelope["raw"] = raw.decode(errors="backslashreplace")
        envelope["error"] = error
    return msgspec.json.encode(envelope).decode()


commands = [topics]
