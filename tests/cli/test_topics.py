"""`pets topics create|list|tail` against the real broker, isolated by a topic prefix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import msgspec
import pytest
from click.testing import CliRunner, Result

from pets.cli import main
from pets.pipelines.kafka_io import delete_topics, ensure_topics, existing_topics, producer
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def prefixed(settings: Settings, kafka_bootstrap: str, topic_prefix: str) -> Iterator[Settings]:
    isolated = replace(settings, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    yield isolated
    delete_topics(isolated, [name for name in existing_topics(isolated) if name.startswith(topic_prefix)])


def _pets(settings: Settings, *args: str) -> Result:
    env = {"PETS_TOPIC_PREFIX": settings.topic_prefix, "PETS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or ""}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_create_is_idempotent_and_follows_the_registry(prefixed: Settings) -> None:
    registry = load_topic_registry(prefixed.config_dir)
    prefix = prefixed.topic_prefix

    first = _pets(prefixed, "topics", "create")
    second = _pets(prefixed, "topics", "create")

    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert [line.split(":")[1].split()[0] for line in first.output.splitlines()] == ["created"] * len(
        registry.topics
    )
    assert [line.split(":")[1].split()[0] for line in second.output.splitlines()] == ["exists"] * len(
        registry.topics
    )
    on_broker = existing_topics(prefixed)
    assert {name: n for name, n in on_broker.items() if name.startswith(prefix)} == {
        spec.full_name(prefix): spec.partitions for spec in registry.topics
    }


def test_create_applies_retention_and_cleanup_policy(prefixed: Settings) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    from pets.pipelines.kafka_io import admin_client

    assert _pets(prefixed, "topics", "create").exit_code == 0
    registry = load_topic_registry(prefixed.config_dir)
    names = [spec.full_name(prefixed.topic_prefix) for spec in registry.topics]
    admin = admin_client(prefixed)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    finally:
        admin.close()
    applied = {
        name: (configs["retention.ms"]["value"], configs["cleanup.policy"]["value"])
        for name, configs in described["topic"].items()
    }
    assert applied == {
        spec.full_name(prefixed.topic_prefix): (str(spec.retention_ms), spec.cleanup_policy)
        for spec in registry.topics
    }


def test_list_tells_which_topics_exist(prefixed: Settings) -> None:
    ensure_topics(prefixed, ["bot.control"])
    result = _pets(prefixed, "topics", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in map(json.loads, result.output.splitlines())}
    prefix = prefixed.topic_prefix
    assert rows[f"{prefix}bot.control"]["exists"] is True
    assert rows[f"{prefix}bot.control"]["broker_partitions"] == 1
    assert rows[f"{prefix}md.book"] == {
        "name": f"{prefix}md.book", "exists": False, "broker_partitions": None,
        "partitions": load_topic_registry(prefixed.config_dir).get("md.book").partitions,
        "schema": "pets.schemas.market_data:MarketFrame",
    }


def test_tail_decodes_by_schema_and_shows_bad_messages_raw(prefixed: Settings) -> None:
    registry = load_topic_registry(prefixed.config_dir)
    spec = registry.get("bot.control")
    try:
        command_type = spec.schema_type()
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{spec.schema} is the registry schema of bot.control but does not load: {exc}")
    command = msgspec.convert(
        {"command_id": "cmd-1", "command": "pause", "bot_id": "mm-1", "reason": "test", "ts_ns": 17},
        command_type,
    )
    ensure_topics(prefixed, ["bot.control"])
    topic = spec.full_name(prefixed.topic_prefix)
    writer = producer(prefixed)
    writer.send(topic, key=b"mm-1", value=msgspec.json.encode(command))
    writer.send(topic, key=b"mm-1", value=b'{"command": "explode"}')
    writer.flush(timeout=10)
    writer.close()

    result = _pets(
        prefixed, "topics", "tail", "bot.control", "--from-beginning", "--max", "2", "--timeout", "20"
    )

    assert result.exit_code == 0, result.output
    good, bad = (json.loads(line) for line in result.output.splitlines())
    assert good["topic"] == topic and good["key"] == "mm-1" and good["offset"] == 0
    assert msgspec.convert(good["value"], command_type) == command
    assert "error" not in good
    assert bad["offset"] == 1 and "value" not in bad
    assert bad["raw"] == '{"command": "explode"}'
    assert spec.schema in bad["error"]


def test_tail_stops_at_the_timeout_when_nothing_comes(prefixed: Settings) -> None:
    ensure_topics(prefixed, ["risk.alert"])
    result = _pets(prefixed, "topics", "tail", "risk.alert", "--timeout", "1")
    assert result.exit_code == 0 and result.output == ""


def test_tail_of_a_missing_topic_says_how_to_create_it(prefixed: Settings) -> None:
    result = _pets(prefixed, "topics", "tail", "risk.alert", "--timeout", "1")
    assert result.exit_code == 1
    assert "pets topics create" in result.output
