"""MultiPartitionKafkaSource against the real broker: every partition through one consumer, in
per-partition order, stopping at the end when not tailing, resuming exactly after its snapshot, and
reporting errors the way Bytewax's stock KafkaSource does."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from bytewax import operators as op
from bytewax.connectors.kafka import KafkaError, KafkaSource, KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, cluster_main, run_main
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from pets.flows.kafka_source import FROM_START, MultiPartitionKafkaSource, OrderLog, produced_order
from pets.pipelines.kafka_io import KAFKA_LOG, OncePerInterval
from pets.settings import Settings

pytestmark = pytest.mark.integration


def create_topics(settings: Settings, partitions: dict[str, int]) -> list[str]:
    """Topics under the test's prefix (the fixture deletes them), with the given partition counts."""
    names = {f"{settings.topic_prefix}{name}": count for name, count in partitions.items()}
    admin = AdminClient({"bootstrap.servers": settings.require_kafka()})
    futures = admin.create_topics([NewTopic(name, count, 1) for name, count in names.items()])
    for future in futures.values():
        future.result(30)
    # the create call returns once the controller has the topics; metadata can trail it briefly
    deadline = time.monotonic() + 30
    while any(admin.list_topics(name, timeout=10).topics[name].error for name in names):
        assert time.monotonic() < deadline, "created topics never showed in the metadata"
        time.sleep(0.05)
    return list(names)


def produce(settings: Settings, topic: str, partitions: int, per_partition: int) -> list[bytes]:
    """`per_partition` messages to each partition, valued b"topic/partition/i"; returns them all."""
    client = Producer({"bootstrap.servers": settings.require_kafka(), "linger.ms": 0})
    values = []
    for i in range(per_partition):
        for part in range(partitions):
            value = f"{topic}/{part}/{i}".encode()
            client.produce(topic, value=value, key=str(part).encode(), partition=part)
            values.append(value)
    assert client.flush(30) == 0
    return values


def read_all(source: MultiPartitionKafkaSource) -> list[Any]:
    flow = Dataflow("kafka_source_test")
    out: list[Any] = []
    op.output("out", op.input("kafka_in", flow, source), TestingSink(out))
    run_main(flow)
    return out


def by_partition(items: list[Any]) -> dict[tuple[str, int], list[bytes]]:
    seen: dict[tuple[str, int], list[bytes]] = {}
    for item in items:
        seen.setdefault((item.topic, item.partition), []).append(item.value)
    return seen


def expected_by_partition(values: list[bytes]) -> dict[tuple[str, int], list[bytes]]:
    expected: dict[tuple[str, int], list[bytes]] = {}
    for value in values:
        topic, part, _ = value.decode().rsplit("/", 2)
        expected.setdefault((topic, int(part)), []).append(value)
    return expected


def test_reads_every_partition_of_several_topics_in_order_and_stops_at_the_end(
    prefixed_settings: Settings,
) -> None:
    first, second, empty = create_topics(prefixed_settings, {"a": 3, "b": 2, "empty": 2})
    values = produce(prefixed_settings, first, 3, 40) + produce(prefixed_settings, second, 2, 25)
    source = MultiPartitionKafkaSource(
        [prefixed_settings.require_kafka()], [first, second, empty], tail=False, batch_size=7
    )

    items = read_all(source)  # returns only because tail=False stops at the end of every partition

    assert all(isinstance(item, KafkaSourceMessage) for item in items)
    assert by_partition(items) == expected_by_partition(values)
    for item in items:
        assert item.offset == int(item.value.decode().rsplit("/", 1)[1])
        assert item.key == str(item.partition).encode()


def test_two_workers_read_every_message_once(prefixed_settings: Settings) -> None:
    (topic,) = create_topics(prefixed_settings, {"w": 4})
    values = produce(prefixed_settings, topic, 4, 10)
    flow = Dataflow("kafka_source_test")
    out: list[Any] = []
    source = MultiPartitionKafkaSource([prefixed_settings.require_kafka()], [topic], tail=False)
    op.output("out", op.input("kafka_in", flow, source), TestingSink(out))

    cluster_main(flow, [], 0, worker_count_per_proc=2)  # both workers list "all"; one reads it

    assert by_partition(out) == expected_by_partition(values)


def test_a_resumed_partition_continues_exactly_after_its_snapshot(prefixed_settings: Settings) -> None:
    (topic,) = create_topics(prefixed_settings, {"r": 3})
    values = produce(prefixed_settings, topic, 3, 30)
    source = MultiPartitionKafkaSource(
        [prefixed_settings.require_kafka()], [topic], tail=False, batch_size=10
    )
    (part,) = source.list_parts()

    reader = source.build_part("kafka_in", part, None)
    before: list[Any] = []
    while len(before) < 35:  # stop part-way through some partitions
        before.extend(reader.next_batch())
    snapshot = reader.snapshot()
    reader.close()
    assert snapshot == {
        (topic, p): max(m.offset for m in before if m.partition == p) + 1
        for p in {m.partition for m in before}
    }

    resumed = source.build_part("kafka_in", part, snapshot)
    after: list[Any] = []
    with pytest.raises(StopIteration):
        while True:
            after.extend(resumed.next_batch())
    resumed.close()

    assert by_partition(before + after) == expected_by_partition(values)  # no gap, no duplicate


def test_partitions_added_while_tailing_are_read(prefixed_settings: Settings) -> None:
    (topic,) = create_topics(prefixed_settings, {"grow": 1})
    brokers = [prefixed_settings.require_kafka()]
    reader = MultiPartitionKafkaSource(brokers, [topic], refresh_s=0.0).build_part("kafka_in", "all", None)
    admin = AdminClient({"bootstrap.servers": brokers[0]})
    admin.create_partitions([NewPartitions(topic, 2)])[topic].result(30)
    values = produce(prefixed_settings, topic, 2, 3)

    items: list[Any] = []
    for _ in range(5000):
        items.extend(reader.next_batch())
        if len(items) == len(values):
            break
    reader.close()

    assert by_partition(items) == expected_by_partition(values)


def test_a_missing_topic_fails_like_the_stock_source(prefixed_settings: Settings) -> None:
    missing = f"{prefixed_settings.topic_prefix}missing"  # the broker does not auto-create topics
    brokers = [prefixed_settings.require_kafka()]

    with pytest.raises(RuntimeError) as stock:
        KafkaSource(brokers, [missing]).list_parts()
    with pytest.raises(RuntimeError) as ours:
        MultiPartitionKafkaSource(brokers, [missing]).list_parts()

    assert str(ours.value) == str(stock.value)


def test_an_unreachable_broker_fails_with_the_topic_named(prefixed_settings: Settings) -> None:
    topic = f"{prefixed_settings.topic_prefix}anything"
    source = MultiPartitionKafkaSource(["127.0.0.1:1"], [topic], metadata_timeout_s=1.0)

    with pytest.raises(RuntimeError, match=f"error listing partitions for Kafka topic `'{topic}'`"):
        source.list_parts()


def first_items(part: Any, calls: int = 3000) -> list[Any]:
    for _ in range(calls):
        items = list(part.next_batch())
        if items:
            return items
    return []


def test_a_consumer_error_raises_or_becomes_a_kafka_error_item_like_the_stock_source(
    prefixed_settings: Settings,
) -> None:
    (topic,) = create_topics(prefixed_settings, {"short": 1})
    produce(prefixed_settings, topic, 1, 3)
    brokers = [prefixed_settings.require_kafka()]
    # resuming past the end with no offset reset allowed: the consumer reports "offset out of range"
    config = {"auto.offset.reset": "error"}
    past_end = {(topic, 0): 100}

    def ours(raise_on_errors: bool) -> Any:
        source = MultiPartitionKafkaSource(
            brokers, [topic], add_config=config, raise_on_errors=raise_on_errors
        )
        return source.build_part("kafka_in", "all", past_end)

    def stock(raise_on_errors: bool) -> Any:
        source = KafkaSource(brokers, [topic], add_config=config, raise_on_errors=raise_on_errors)
        return source.build_part("kafka_in", f"0-{topic}", 100)

    raised = []
    for build in (ours, stock):
        part = build(True)
        with pytest.raises(RuntimeError, match=f"error consuming from Kafka topic `'{topic}'`") as caught:
            first_items(part)
        part.close()
        raised.append(str(caught.value))
    assert raised[0] == raised[1]

    emitted = []
    for build in (ours, stock):
        part = build(False)
        emitted.append(first_items(part))
        part.close()
    ours_items, stock_items = emitted
    assert [type(item) for item in ours_items] == [type(item) for item in stock_items] == [KafkaError]
    assert ours_items[0].err.code() == stock_items[0].err.code()
    assert ours_items[0].msg.topic == stock_items[0].msg.topic == topic


def test_repeated_log_lines_pass_once_per_interval_with_a_count() -> None:
    now = [0.0]
    limit = OncePerInterval(30.0, clock=lambda: now[0])

    def record(text: str) -> logging.LogRecord:
        return logging.LogRecord("pets.kafka", logging.ERROR, __file__, 1, "%s", (text,), None)

    fail = "Connect to ipv4#127.0.0.1:9 failed: Connection refused (after {}ms in state CONNECT)"
    passed = [r for i in range(100) if limit.filter(r := record(fail.format(i % 3)))]
    assert len(passed) == 1
    assert limit.filter(record("another kind of trouble"))  # its own budget
    now[0] = 31.0
    late = record(fail.format(7))
    assert limit.filter(late) and late.getMessage().endswith("(99 more like it in 30 s)")


def test_a_consumer_of_a_down_broker_logs_its_failure_once(caplog: pytest.LogCaptureFixture) -> None:
    # librdkafka printed a FAIL line to stderr every ~50 ms (hundreds a minute) while the broker was down
    source = MultiPartitionKafkaSource(
        ["127.0.0.1:9"], ["t"], add_config={"reconnect.backoff.ms": "50", "reconnect.backoff.max.ms": "50"}
    )
    (limit,) = [f for f in KAFKA_LOG.filters if isinstance(f, OncePerInterval)]
    limit.seen.clear()  # other tests of this process may have had their connection refused too
    consumer = Consumer(source._config())
    try:
        with caplog.at_level(logging.INFO, logger="pets.kafka"):
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                consumer.poll(0.1)
    finally:
        consumer.close()
    failures = [
        r for r in caplog.records if r.name == "pets.kafka" and "Connection refused" in r.getMessage()
    ]
    assert len(failures) == 1, [r.getMessage() for r in failures]


TOPICS = ("book", "exec")


def _msg(topic: str, offset: int) -> KafkaSourceMessage[bytes | None, bytes | None]:
    return KafkaSourceMessage(
        key=None, value=f"{topic}{offset}".encode(), topic=topic, partition=0, offset=offset
    )


def _values(items: list[Any]) -> list[str]:
    return [item.value.decode() for item in items]


def test_a_resumed_source_hands_on_the_logged_messages_in_the_logged_order(tmp_path: Path) -> None:
    path = tmp_path / "order.log"
    first = OrderLog(path, None, TOPICS)
    assert _values(first.order([_msg("book", 0), _msg("exec", 0), _msg("book", 1)])) == [
        "book0",
        "exec0",
        "book1",
    ]
    first.snapshot({("book", 0): 1, ("exec", 0): 0})  # book0 is before the snapshot...
    assert _values(first.order([_msg("exec", 1)])) == ["exec1"]
    first.close()  # ...then the process is killed

    # resumed at that snapshot, the consumer happens to fetch the order topic first
    resumed = OrderLog(path, {("book", 0): 1, ("exec", 0): 0}, TOPICS)
    assert _values(resumed.order([_msg("exec", 0), _msg("exec", 1), _msg("exec", 2)])) == ["exec0"]
    assert _values(resumed.order([_msg("book", 1), _msg("book", 2)])) == ["book1", "exec1", "exec2", "book2"]
    assert _values(resumed.order([_msg("book", 3)])) == ["book3"]  # live again
    resumed.close()
    lines = path.read_text().splitlines()
    assert lines == ["exec\t0\t0", "book\t0\t1", "exec\t0\t1", "exec\t0\t2", "book\t0\t2", "book\t0\t3"]

    # a message the log lists but the topic no longer has (retention) is skipped once its partition
    # is past it; a fresh start (no resume state) starts a new log
    gone = OrderLog(path, {("book", 0): 1, ("exec", 0): 0}, TOPICS)
    assert _values(gone.order([_msg("book", 2)])) == []  # waits for exec0, book1 (book1: gone)
    assert _values(gone.order([_msg("exec", 0), _msg("exec", 2)])) == ["exec0", "exec2", "book2"]
    gone.close()
    OrderLog(path, None, TOPICS).close()
    assert path.read_text() == FROM_START


def test_a_source_killed_before_its_first_snapshot_replays_its_log_from_the_start(tmp_path: Path) -> None:
    """Before: with no resume state the log started empty, and the restart handed on the backlog as
    the consumer fetched it (here book's run before exec's), not as the first run had."""
    path = tmp_path / "order.log"
    first = OrderLog(path, None, TOPICS)
    handed = first.order([_msg("book", 0), _msg("exec", 0), _msg("book", 1)])
    assert _values(handed) == ["book0", "exec0", "book1"]
    first.close()  # killed before any snapshot

    restarted = OrderLog(path, None, TOPICS)
    assert _values(restarted.order([_msg("book", 0), _msg("book", 1), _msg("book", 2)])) == ["book0"]
    assert _values(restarted.order([_msg("exec", 0)])) == ["exec0", "book1", "book2"]
    restarted.snapshot({("book", 0): 3, ("exec", 0): 1})  # the first snapshot: the log is kept whole
    restarted.close()
    assert path.read_text().startswith(FROM_START)

    # another flow's log (topics this source does not read) is not replayed: a new log
    other = OrderLog(path, None, ("tops", "fills"))
    assert _values(other.order([_msg("tops", 0)])) == ["tops0"]
    other.close()
    assert path.read_text() == FROM_START + "tops\t0\t0\n"

    # once a snapshot cut it, the log no longer holds the start: a fresh start does not replay it
    cut = OrderLog(path, None, ("tops", "fills"))
    assert _values(cut.order([_msg("tops", 0), _msg("tops", 1)])) == ["tops0", "tops1"]
    cut.snapshot({("tops", 0): 1})
    cut.snapshot({("tops", 0): 2})
    cut.close()
    assert path.read_text() == "tops\t0\t1\n"
    fresh = OrderLog(path, None, ("tops", "fills"))
    assert _values(fresh.order([_msg("tops", 1), _msg("tops", 0)])) == ["tops1", "tops0"]
    fresh.close()


def _produced(topic: str, offset: int, ms: int) -> KafkaSourceMessage[bytes | None, bytes | None]:
    return KafkaSourceMessage(key=None, value=b"", topic=topic, offset=offset, partition=0, timestamp=(1, ms))


def test_a_batch_is_handed_on_in_the_order_it_was_produced() -> None:
    """A lagging flow fetches runs of one topic then another: an intent must not pass the top of
    book it was priced from. Ties go to the topic listed first; one partition keeps its order."""
    tops = [_produced("md.tob", 0, 10), _produced("md.tob", 1, 30)]
    intents = [_produced("order.intent", n, ms) for n, ms in enumerate((20, 30, 5))]
    merged = produced_order([*intents, *tops], {"md.tob": 0, "order.intent": 1})
    assert [(m.topic, m.offset) for m in merged] == [  # type: ignore[union-attr]
        ("md.tob", 0), ("order.intent", 0), ("md.tob", 1), ("order.intent", 1), ("order.intent", 2),
    ]  # fmt: skip


def test_split_gives_each_partition_index_its_own_bytewax_partition_across_topics(
    prefixed_settings: Settings, tmp_path: Path
) -> None:
    """A cluster's source: partition i of every topic in Bytewax partition "i" (co-partitioned topics
    meet there), each with its own snapshot and order log; a topic with fewer partitions is read by
    the low indexes only."""
    book, tob, markets = create_topics(prefixed_settings, {"book": 3, "tob": 3, "markets": 1})
    values = [*produce(prefixed_settings, book, 3, 5), *produce(prefixed_settings, tob, 3, 5)]
    values += produce(prefixed_settings, markets, 1, 5)
    log = tmp_path / "flow.input_order.log"
    source = MultiPartitionKafkaSource(
        [prefixed_settings.require_kafka()], [book, tob, markets], tail=False, order_log=log, split=True
    )
    assert source.list_parts() == ["0", "1", "2"]

    read: dict[str, list[Any]] = {}
    for part in source.list_parts():
        reader = source.build_part("kafka_in", part, None)
        read[part] = []
        with pytest.raises(StopIteration):
            while True:
                read[part].extend(reader.next_batch())
        snapshot = reader.snapshot()
        reader.close()
        assert {item.partition for item in read[part]} == {int(part)}
        assert set(snapshot) == {(topic, int(part)) for topic in (book, tob)} | (
            {(markets, 0)} if part == "0" else set()
        )
        assert (tmp_path / f"flow.input_order.log.{part}").is_file()

    assert by_partition([item for items in read.values() for item in items]) == expected_by_partition(values)
    assert not log.exists()  # one log per partition, none for "all"


def test_a_split_source_in_a_four_worker_cluster_reads_every_message_once(
    prefixed_settings: Settings,
) -> None:
    (topic,) = create_topics(prefixed_settings, {"c": 4})
    values = produce(prefixed_settings, topic, 4, 10)
    flow = Dataflow("kafka_source_test")
    out: list[Any] = []
    source = MultiPartitionKafkaSource([prefixed_settings.require_kafka()], [topic], tail=False, split=True)
    seen = op.map("worker", op.input("kafka_in", flow, source), lambda m: m)
    op.output("out", seen, TestingSink(out))

    cluster_main(flow, [], 0, worker_count_per_proc=4)

    assert by_partition(out) == expected_by_partition(values)


def test_a_backlog_of_two_topics_is_handed_on_in_produced_order_across_batches(
    prefixed_settings: Settings,
) -> None:
    """A lagging consumer's batches hold runs of one partition (a fetch, or `batch_size`, cuts them):
    what one partition brings past the point another has reached waits for that one, so the whole
    backlog comes out in produced order, not only each batch."""
    books, approvals = create_topics(prefixed_settings, {"md.book": 2, "order.exec": 1})
    client = Producer({"bootstrap.servers": prefixed_settings.require_kafka(), "linger.ms": 5})
    start_ms = int(time.time() * 1000) - 60_000
    for i in range(600):  # a book frame per ms on alternate partitions, an approval every third ms
        client.produce(books, value=f"b{i}".encode(), partition=i % 2, timestamp=start_ms + i)
        if i % 3 == 0:
            client.produce(approvals, value=f"a{i}".encode(), partition=0, timestamp=start_ms + i)
    assert client.flush(30) == 0
    source = MultiPartitionKafkaSource(
        [prefixed_settings.require_kafka()], [books, approvals], tail=False, batch_size=50
    )
    items = read_all(source)
    assert len(items) == 600 + 200
    stamps = [item.timestamp[1] for item in items]
    assert stamps == sorted(stamps)
    handed = [item.value for item in items if item.topic == approvals]
    assert handed == [f"a{i}".encode() for i in range(0, 600, 3)]
