"""Each flow's readiness from its Bytewax recovery store (`pets flow run NAME` keeps one under
settings.recovery_dir/NAME): the age of its newest snapshot is its heartbeat, and the input offsets
that snapshot holds, against the topics' end offsets, its consumer lag (Bytewax keeps offsets there,
not in consumer groups). Read-only; a flow without a store here is simply not listed."""

from __future__ import annotations

import pickle
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pets.settings import Settings

# the newest snapshot of each Kafka input step (every flow names them <flow>.<name>_in)
_INPUTS = """
SELECT step_id, ser_change FROM snaps s
WHERE step_id LIKE '%\\_in' ESCAPE '\\' AND ser_change IS NOT NULL
  AND snap_epoch = (SELECT max(snap_epoch) FROM snaps t
                    WHERE t.step_id = s.step_id AND t.state_key = s.state_key)
"""


@dataclass(frozen=True, slots=True)
class StoredFlow:
    name: str
    last_snapshot: datetime | None
    offsets: dict[tuple[str, int], int]  # (full topic name, partition) -> next offset to read


def stored_flows(recovery_dir: Path) -> list[StoredFlow]:
    flows = []
    for directory in sorted(p for p in recovery_dir.glob("*") if p.is_dir()) if recovery_dir.is_dir() else []:
        last: datetime | None = None
        offsets: dict[tuple[str, int], int] = {}
        for part in sorted(directory.glob("part-*.sqlite3")):
            try:
                conn = sqlite3.connect(f"file:{part}?mode=ro", uri=True, timeout=1)
                try:
                    row = conn.execute("SELECT max(created_at) FROM snaps").fetchone()
                    inputs = conn.execute(_INPUTS).fetchall()
                finally:
                    conn.close()
            except sqlite3.Error:
                continue
            if row and row[0]:
                at = datetime.fromisoformat(row[0]).replace(tzinfo=UTC)  # SQLite's CURRENT_TIMESTAMP: UTC
                last = at if last is None or at > last else last
            for _, blob in inputs:
                offsets.update(_offsets(blob))
        flows.append(StoredFlow(directory.name, last, offsets))
    return flows


def _offsets(blob: bytes) -> dict[tuple[str, int], int]:
    """A Kafka input's snapshot: {(topic, partition): offset} (our own store, pickled by Bytewax)."""
    try:
        state: Any = pickle.loads(blob)  # the flows' own recovery files, not input from outside
    except Exception:
        return {}
    if not isinstance(state, dict):
        return {}
    return {
        (k[0], k[1]): v
        for k, v in state.items()
        if isinstance(k, tuple) and len(k) == 2 and isinstance(k[0], str) and isinstance(v, int)
    }


def consumer_lag(settings: Settings, offsets: dict[tuple[str, int], int]) -> int | None:
    """Messages on the inputs after the stored offsets (None: the broker did not answer)."""
    if not offsets or not settings.kafka_bootstrap:
        return None
    from kafka import TopicPartition
    from kafka.errors import KafkaError

    from pets.pipelines.kafka_io import consumer, quiet_kafka_logs

    parts = [TopicPartition(topic, partition) for topic, partition in offsets]
    try:
        with quiet_kafka_logs():
            client = consumer(settings, bootstrap_timeout_ms=3_000)
            try:
                ends = client.end_offsets(parts)
            finally:
                client.close()
    except KafkaError:
        return None
    # a negative offset is Bytewax's "from the beginning" before the first message was read
    return sum(max(0, ends.get(tp, 0) - max(0, offsets[(tp.topic, tp.partition)])) for tp in parts)
