"""Small Kafka helpers (kafka-python): admin/producer/consumer from settings, and registry topics.

Inside dataflows Bytewax's own Kafka connector does the streaming; these helpers are for the CLI,
tests and setup. The local broker does not auto-create topics, so every flow or test that writes to
Kafka first calls :func:`ensure_topics` for the registry topics it uses (with its
``settings.topic_prefix``); it is idempotent and cheap when the topics exist.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

from pets.schemas.topics import TopicSpec, load_topic_registry
from pets.settings import Settings

LOG_INTERVAL_S = 30.0


class OncePerInterval(logging.Filter):
    """Lets each kind of message through once per `interval_s`, saying how many like it were held
    back. librdkafka repeats a failing connection's error every ~50 ms per client (hundreds of lines
    a minute with the broker down); the kind is the message with its numbers blanked out."""

    def __init__(self, interval_s: float = LOG_INTERVAL_S, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self.seen: dict[str, tuple[float, int]] = {}  # kind -> (when it last passed, held back since)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        kind = _NUMBERS.sub("#", message)[:200]
        now = self.clock()
        passed, held = self.seen.get(kind, (float("-inf"), 0))
        if now - passed < self.interval_s:
            self.seen[kind] = (passed, held + 1)
            return False
        self.seen[kind] = (now, 0)
        if held:
            record.msg, record.args = f"{message} ({held} more like it in {self.interval_s:g} s)", ()
        return True


_NUMBERS = re.compile(r"\d+")
# librdkafka's own log lines (connection failures, ...) go here instead of straight to stderr
KAFKA_LOG = logging.getLogger("pets.kafka")
KAFKA_LOG.addFilter(OncePerInterval())

# How long a client waits for the first broker connection before giving up.
BOOTSTRAP_TIMEOUT_MS = 10_000


@contextlib.contextmanager
def quiet_kafka_logs() -> Iterator[None]:
    """Silence kafka-python's connection warnings while probing a broker that may not be up yet."""
    logger = logging.getLogger("kafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def admin_for(bootstrap: str, timeout_ms: int = BOOTSTRAP_TIMEOUT_MS) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="pets-admin",
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=max(timeout_ms, 5_000),
    )


def broker_unready(bootstrap: str, timeout_ms: int = 2_000) -> str | None:
    """None when the broker answers metadata with at least one live broker, else why not."""
    with quiet_kafka_logs():
        try:
            admin = admin_for(bootstrap, timeout_ms)
        except KafkaError as exc:
            return f"no connection: {exc!r}"
        try:
            brokers = admin.describe_cluster().get("brokers") or []
        except KafkaError as exc:
            return f"metadata failed: {exc!r}"
        finally:
            admin.close()
    return None if brokers else "no live broker in the metadata yet"


def admin_client(settings: Settings) -> KafkaAdminClient:
    return admin_for(settings.require_kafka())


def producer(settings: Settings, **config: Any) -> KafkaProducer:
    """A producer of raw bytes; ``config`` overrides kafka-python settings (linger_ms, acks, ...)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.require_kafka(),
        "client_id": "pets-producer",
        "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        "acks": "all",
    }
    options.update(config)
    return KafkaProducer(**options)


def consumer(settings: Settings, **config: Any) -> KafkaConsumer:
    """A consumer of raw bytes without a group (assign partitions yourself) unless ``group_id`` is set."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.require_kafka(),
        "client_id": "pets-consumer",
        "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
    }
    options.update(config)
    return KafkaConsumer(**options)


def topic_configs(spec: TopicSpec) -> dict[str, str]:
    """The broker-side topic configuration the registry asks for."""
    return {"retention.ms": str(spec.retention_ms), "cleanup.policy": spec.cleanup_policy}


def existing_topics(settings: Settings) -> dict[str, int]:
    """Every topic on the broker with its partition count."""
    admin = admin_client(settings)
    try:
        return {t["name"]: len(t["partitions"]) for t in admin.describe_topics()}
    finally:
        admin.close()


def ensure_topics(settings: Settings, names: Iterable[str] | None = None) -> dict[str, bool]:
    """Create the registry topics ``names`` (all when None) under ``settings.topic_prefix``.

    Idempotent: returns ``{full topic name: created now}``; topics that already exist are left as
    they are. Waits until every topic has a leader, so producing right after works.
    """
    reg = load_topic_registry(settings.config_dir)
    specs = [reg.get(n) for n in names] if names is not None else list(reg.topics)
    wanted = {spec.full_name(settings.topic_prefix): spec for spec in specs}
    if not wanted:
        return {}
    admin = admin_client(settings)
    try:
        present = set(admin.list_topics())
        missing = {name: spec for name, spec in wanted.items() if name not in present}
        created: set[str] = set()
        if missing:
            response = admin.create_topics(
                {
                    name: {"num_partitions": spec.partitions, "configs": topic_configs(spec)}
                    for name, spec in missing.items()
                },
                raise_errors=False,
            )
            for result in response["topics"]:
                error = result.get("error_code", 0)
                if error == 0:
                    created.add(result["name"])
                elif error != TopicAlreadyExistsError.errno:  # lost a race with another creator: fine
                    raise KafkaError(
                        f"creating topic {result['name']!r} failed: error {error} "
                        f"{result.get('error_message') or ''}".rstrip()
                    )
        admin.wait_for_topics(list(wanted), timeout_ms=30_000)
    finally:
        admin.close()
    return {name: name in created for name in wanted}


def delete_topics(settings: Settings, full_names: Iterable[str]) -> None:
    """Delete topics by full name (prefix included); missing ones are ignored."""
    topics = list(full_names)
    if not topics:
        return
    admin = admin_client(settings)
    try:
        response = admin.delete_topics(topics, raise_errors=False)
        for result in response["topics"]:
            error = result.get("error_code", 0)
            if error not in (0, UnknownTopicOrPartitionError.errno):
                raise KafkaError(f"deleting topic {result.get('name')!r} failed: error {error}")
    finally:
        admin.close()
