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

Order log (`order_log`): the offsets say where each partition resumes, not in which order the
partitions' messages were interleaved, and a flow whose state depends on that order (the executor:
an order placed before or after a book frame fills or is refused) would decide differently on the
replay after a crash. With an order log the source appends, before handing a batch on, the
(topic, partition, offset) of each message to a file; a resumed partition hands the messages the log
lists after its snapshot offsets on in the logged order (holding back what arrives early), then
carries on live. The snapshot offsets only move past messages handed on. The log survives a killed
process (written before the batch goes downstream; not fsynced: a lost machine loses it with the
page cache) and is cut at every snapshot to what the snapshot before it may still replay.

Produced order: one fetch brings what every partition has, grouped by partition, so a flow that
lagged (starting, snapshotting) would see a whole run of one topic before another's: the risk flow an
order intent before the top of book it was priced from, the executor a book frame before the
approved order of the frame before it. A batch is handed on merged by the time each message was
produced (Kafka CreateTime; on a tie, in the order of `topics`, which the flows list upstream
first), each partition's messages staying in their order: a flow sees its topics interleaved as the
pipeline produced them, as `pets run` would have delivered them (docs/running.md). Across batches
too: a lagging consumer's batch holds runs of some partitions only (a fetch's size, `batch_size`), so
what is past the last message of a partition still behind (its position short of its high watermark,
as the last fetch reported it) waits for that partition's next messages, at most `MAX_HOLD_S`. A
partition caught up holds nothing back, and at the live edge (the newest message less than `LIVE_MS`
old by the producer's clock) nothing waits; at a start, a partition no fetch has answered for yet
counts as behind for `MAX_HOLD_S`.

Clusters (`split=True`, a flow run with more than one worker in all, docs/deploy.md): one Bytewax
partition per Kafka partition index, "0" .. "N-1" (N: the most partitions of any of `topics`), each
with its own consumer, snapshot and order log (`order_log` + ".<index>"). Partition i of every topic
belongs to Bytewax partition i: topics keyed by market with the same partition count (md.book, md.tob,
signal.*: co-partitioned) bring a market's frames, tops and signals to one worker in the order they
were produced, and the keyed steps downstream exchange what belongs elsewhere. Partitions added while
a cluster runs are read by the partition of their index only when it exists: the cluster's partitions
are fixed at its start, like its recovery store.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, cast

from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition
from confluent_kafka import KafkaError as ConfluentKafkaError

from pets.observability.metrics import consumer_lag_from_stats
from pets.pipelines.kafka_io import KAFKA_LOG

SourceMessage = KafkaSourceMessage[bytes | None, bytes | None]
Item = SourceMessage | KafkaError[bytes | None, bytes | None]
Offsets = dict[tuple[str, int], int]  # (topic, partition) -> offset of the next message to read
Entry = tuple[str, int, int]  # (topic, partition, offset) of one message handed on
PART = "all"
MIN_REFRESH_S = 0.01
# The longest a message waits for a partition behind (a fetch's wait is 0.5 s: a start's first answer)
MAX_HOLD_S = 0.5
# A consumer whose newest message is younger than this is at the live edge: its fetches bring the
# partitions as they are produced, and holding back for a fetch racing the check only adds latency
LIVE_MS = 500
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
        order_log: Path | None = None,
        split: bool = False,
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
        self._order_log = order_log
        self._split = split

    def list_parts(self) -> list[str]:
        """One Bytewax partition ("all"), or with `split` one per Kafka partition index; listing the
        topics here fails early, as the stock source does."""
        consumer = Consumer(self._config())
        try:
            found = _partitions(consumer, self._topics, self._metadata_timeout_s)
        finally:
            consumer.close()
        if not self._split:
            return [PART]
        return [str(index) for index in range(max(part for _, part in found) + 1)]

    def build_part(self, step_id: str, for_part: str, resume_state: Offsets | None) -> _Partition:
        if resume_state is not None:
            unknown = {topic for topic, _ in resume_state} - set(self._topics)
            if unknown:
                raise ValueError(f"can't resume {step_id!r} from other Kafka topics: {sorted(unknown)}")
        index = None if for_part == PART else int(for_part)
        log_path = self._order_log
        if log_path is not None and index is not None:
            log_path = log_path.with_name(f"{log_path.name}.{index}")
        return _Partition(
            Consumer(self._config()), self._topics, dict(resume_state or {}), self._starting_offset,
            tail=self._tail, batch_size=self._batch_size, raise_on_errors=self._raise_on_errors,
            poll_timeout_s=self._poll_timeout_s, refresh_s=self._refresh_s,
            metadata_timeout_s=self._metadata_timeout_s,
            order_log=None if log_path is None else OrderLog(log_path, resume_state, self._topics),
            index=index,
        )  # fmt: skip

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap.servers": ",".join(self._brokers),
            "logger": KAFKA_LOG,
            # offsets live in Bytewax's recovery store; assign() does not join the group
            "group.id": "BYTEWAX_IGNORED",
            "enable.auto.commit": False,
            "enable.partition.eof": not self._tail,
            # per-topic lag for Prometheus (pets_consumer_lag_messages), from librdkafka's own figures
            "statistics.interval.ms": 5000,
            "stats_cb": consumer_lag_from_stats,
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
        order_log: OrderLog | None = None,
        index: int | None = None,
    ) -> None:
        self._consumer = consumer
        self._index = index  # the Kafka partition index this partition reads; None: every partition
        self._log = order_log
        self._topics = topics
        self._rank = {topic: n for n, topic in enumerate(topics)}
        self._offsets = offsets
        self._starting_offset = starting_offset
        self._tail = tail
        self._batch_size = batch_size
        self._raise_on_errors = raise_on_errors
        self._poll_timeout_s = poll_timeout_s
        self._refresh_s = refresh_s
        self._metadata_timeout_s = metadata_timeout_s
        self._assigned: set[tuple[str, int]] = set()
        self._assigned_at: dict[tuple[str, int], float] = {}
        self._consumed: Offsets = {}  # the next offset after the last message consumed
        self._held: list[SourceMessage] = []  # consumed, waiting for a partition still behind
        self._held_since = 0.0
        self._at_end: set[tuple[str, int]] = set()  # tail=False: partitions that reached their end
        self._stop = False
        self._assign_new(self._listed())
        self._found: list[tuple[str, int]] | None = None  # the watcher's latest listing, not yet applied
        self._closing = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="kafka-partition-watcher", daemon=True)
        if tail:
            self._watcher.start()

    def _watch(self) -> None:
        while not self._closing.wait(max(self._refresh_s, MIN_REFRESH_S)):
            try:
                self._found = self._listed()
            except RuntimeError:  # metadata unavailable just now (or closing): look again later
                continue

    def _listed(self) -> list[tuple[str, int]]:
        found = _partitions(self._consumer, self._topics, self._metadata_timeout_s)
        return found if self._index is None else [tp for tp in found if tp[1] == self._index]

    def _assign_new(self, found: list[tuple[str, int]]) -> None:
        """Assign the partitions not yet assigned, each at its snapshot offset (or the start)."""
        new = [tp for tp in found if tp not in self._assigned]
        if new:
            self._consumer.incremental_assign([
                TopicPartition(topic, part, self._offsets.get((topic, part), self._starting_offset))
                for topic, part in new
            ])  # fmt: skip
            self._assigned.update(new)
            now = time.monotonic()
            self._assigned_at.update((tp, now) for tp in new)

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
                self._consumed[(topic, part)] = (item.offset or 0) + 1
        # like the stock source: stop on the next call, so this batch is still emitted
        self._stop = not self._tail and self._at_end >= self._assigned
        if self._held:
            batch = [*self._held, *batch]
        if len(batch) > 1:
            batch = produced_order(batch, self._rank)
        if len(self._assigned) > 1:
            batch = self._release(batch)
        if self._log is not None:
            batch = self._log.order(batch, flush=self._stop)
        for handed in batch:
            if not isinstance(handed, KafkaError):
                # resume after this one (only past what is handed on: the log may hold some back)
                self._offsets[(handed.topic or "", handed.partition or 0)] = (handed.offset or 0) + 1
        return batch

    def _release(self, merged: list[Item]) -> list[Item]:
        """The prefix of `merged` no partition still behind can precede; the rest is held. At the
        live edge (the newest message produced less than LIVE_MS ago) nothing is held."""
        now = time.monotonic()
        newest = max((_stamp(item) for item in merged if not isinstance(item, KafkaError)), default=0)
        live = time.time() * 1000 - newest < LIVE_MS
        behind = [] if self._stop or live else self._behind(now)
        if not behind or (self._held and now - self._held_since > MAX_HOLD_S):
            self._held = []
            return merged
        last: dict[tuple[str, int], int] = {}
        for item in merged:
            if not isinstance(item, KafkaError):
                last[(item.topic or "", item.partition or 0)] = _stamp(item)
        cutoff = min(last.get(tp, -1) for tp in behind)
        cut = next((n for n, item in enumerate(merged) if _past(item, cutoff)), len(merged))
        held = cast(list[SourceMessage], merged[cut:])
        if held and not self._held:
            self._held_since = now
        self._held = held
        return merged[:cut]

    def _behind(self, now: float) -> list[tuple[str, int]]:
        """The assigned partitions whose next message the broker already has, as the last fetch for
        each reported it, and the ones just assigned whose first fetch has not answered yet."""
        behind = []
        for topic, part in self._assigned:
            low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, part), cached=True)
            if high < 0:  # no fetch has answered for it yet: behind while it may be (a start)
                if now - self._assigned_at.get((topic, part), 0.0) < MAX_HOLD_S:
                    behind.append((topic, part))
                continue
            position = self._consumed.get((topic, part))
            if position is None:  # nothing consumed yet: where it was assigned
                start = self._offsets.get((topic, part), self._starting_offset)
                position = low if start == OFFSET_BEGINNING else high if start < 0 else start
            if position < high:
                behind.append((topic, part))
        return behind

    def snapshot(self) -> Offsets:
        offsets = dict(self._offsets)
        if self._log is not None:
            self._log.snapshot(offsets)
        return offsets

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        self._closing.set()
        if self._watcher.is_alive():
            self._watcher.join(self._metadata_timeout_s)
        self._consumer.close()


def produced_order(batch: list[Item], rank: dict[str, int]) -> list[Item]:
    """The batch merged by produce time (ties: `rank` of the topic), errors first; the messages of one
    partition keep their order whatever their timestamps say."""
    errors: list[Item] = []
    runs: dict[tuple[str, int], list[SourceMessage]] = {}
    for item in batch:
        if isinstance(item, KafkaError):
            errors.append(item)
        else:
            runs.setdefault((item.topic or "", item.partition or 0), []).append(item)
    if len(runs) < 2:
        return batch

    def key(item: SourceMessage) -> tuple[int, int]:
        return _stamp(item), rank.get(item.topic or "", len(rank))

    return [*errors, *heapq.merge(*runs.values(), key=key)]


def _past(item: Item, cutoff: int) -> bool:
    return not isinstance(item, KafkaError) and _stamp(item) > cutoff


def _stamp(item: SourceMessage) -> int:
    return item.timestamp[1] if item.timestamp is not None else 0


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


class OrderLog:
    """The order in which a source handed its messages on, to hand them on in that order again after a
    resume (see the module's docstring). One line per message: "topic<TAB>partition<TAB>offset", after
    a first line FROM_START while the log holds everything handed on since the flow first started (no
    snapshot cut it yet). A flow killed before its first snapshot restarts with no resume state and
    reads its topics from the start again: it replays such a log from the start, or its topics'
    interleaving could differ from the first time (a fetch brings a backlog grouped by partition). A
    log naming other topics than `topics` belongs to another flow and is never replayed; the flows
    keep theirs inside their recovery store (`trading_io.order_log`), so a new store starts a new log."""

    def __init__(self, path: Path, resume: Offsets | None, topics: Iterable[str]) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        logged, from_start = _read_log(path, set(topics))
        start = resume or {}  # no resume state: every partition is read from its start again
        replay = resume is not None or from_start
        pending = [e for e in logged if e[2] >= start.get((e[0], e[1]), 0)] if replay else []
        self._from_start = resume is None  # nothing was handed on before what the log holds
        self._entries: list[Entry] = list(pending)  # what the log file holds
        self._write(self._entries)
        self._file: IO[str] = path.open("a")
        self._pending: deque[Entry] = deque(pending)  # the logged order still to reproduce
        self._pending_set = set(pending)
        self._held: dict[Entry, SourceMessage] = {}  # logged messages that came before their turn
        self._later: list[Item] = []  # messages the log does not list: handed on after the pending
        self._highest: dict[tuple[str, int], int] = {}  # highest offset received per partition
        self._kept: Offsets | None = None  # the snapshot before the last one: the oldest resume point

    def order(self, batch: list[Item], *, flush: bool = False) -> list[Item]:
        """The batch in the order to hand on (the logged order first); `flush`: no more input comes."""
        errors: list[Item] = []
        fresh: list[Item] = []  # handed on for the first time: logged now
        replaying = bool(self._pending)
        for item in batch:
            if isinstance(item, KafkaError):
                errors.append(item)
                continue
            entry = _entry(item)
            partition = (entry[0], entry[1])
            self._highest[partition] = max(self._highest.get(partition, -1), entry[2])
            if not replaying:
                fresh.append(item)
            elif entry in self._pending_set:
                self._held[entry] = item
            else:
                self._later.append(item)
        replayed = self._release(flush) if replaying else []
        if replaying and not self._pending:
            fresh, self._later = self._later, []
        self._append([_entry(i) for i in fresh if not isinstance(i, KafkaError)])
        return errors + replayed + fresh

    def _release(self, flush: bool) -> list[Item]:
        """The logged messages now due, in the logged order."""
        released: list[Item] = []
        pending = self._pending
        while pending:
            head = pending[0]
            item = self._held.pop(head, None)
            if item is None and not (flush or self._highest.get((head[0], head[1]), -1) > head[2]):
                break  # not received yet (a partition past it without it no longer has it: skipped)
            pending.popleft()
            self._pending_set.discard(head)
            if item is not None:
                released.append(item)
        return released

    def snapshot(self, offsets: Offsets) -> None:
        """Cut the log to the entries a resume from the previous snapshot could still need."""
        kept, self._kept = self._kept, dict(offsets)
        if kept is None:
            return
        entries = [e for e in self._entries if e[2] >= kept.get((e[0], e[1]), 0)]
        if len(entries) < len(self._entries):
            self._from_start = False
            self._file.close()
            self._entries = entries
            self._write(entries)
            self._file = self._path.open("a")

    def close(self) -> None:
        self._file.close()

    def _append(self, entries: list[Entry]) -> None:
        if entries:
            self._entries += entries
            self._file.write("".join(f"{t}\t{p}\t{o}\n" for t, p, o in entries))
            self._file.flush()  # in the OS before the batch goes on: a killed process keeps it

    def _write(self, entries: list[Entry]) -> None:
        temporary = self._path.with_name(self._path.name + ".tmp")
        head = FROM_START if self._from_start else ""
        temporary.write_text(head + "".join(f"{t}\t{p}\t{o}\n" for t, p, o in entries))
        os.replace(temporary, self._path)


FROM_START = "# order log: from the start\n"


def _entry(item: SourceMessage) -> Entry:
    return (item.topic or "", item.partition or 0, item.offset or 0)


def _read_log(path: Path, topics: set[str]) -> tuple[list[Entry], bool]:
    """The entries of the log at `path` (each once, in order) and whether it holds everything since
    the start; none when it names a topic outside `topics` (another flow's log)."""
    if not path.is_file():
        return [], False
    text = path.read_text()
    entries: list[Entry] = []
    for line in text.splitlines():
        topic, _, rest = line.partition("\t")
        part, _, offset = rest.partition("\t")
        if part.isdigit() and offset.isdigit():  # a line cut by the kill is dropped
            entries.append((topic, int(part), int(offset)))
    if any(topic not in topics for topic, _, _ in entries):
        return [], False
    return list(dict.fromkeys(entries)), text.startswith(FROM_START)
