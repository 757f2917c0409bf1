"""Operator commands on bot.control, as `pets bot ...`, `pets halt` and the control API send them,
and the audit of the API's control actions (who, when, what, why, and what became of it)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pets.schemas.control import BotCommand, ControlCommand
from pets.settings import Settings


def new_command(
    command: BotCommand, bot_id: str, reason: str, issued_by: str, until_ns: int | None = None
) -> ControlCommand:
    return ControlCommand(
        command_id=uuid.uuid4().hex,
        command=command,
        bot_id=bot_id,
        reason=reason,
        issued_by=issued_by,
        ts_ns=time.time_ns(),
        until_ns=until_ns,
    )


def publish_command(settings: Settings, make: Any) -> ControlCommand:
    """Produce the command `make()` builds on bot.control and wait until the broker has it; built once
    the producer holds the topic's metadata, so its ts_ns is when it is sent. Raises KafkaError."""
    from pets.pipelines.kafka_io import ensure_topics, producer
    from pets.schemas.codec import encode
    from pets.schemas.topics import load_topic_registry

    topic = load_topic_registry(settings.config_dir).get("bot.control").full_name(settings.topic_prefix)
    ensure_topics(settings, ["bot.control"])
    client = producer(settings)
    try:
        client.partitions_for(topic)
        cmd: ControlCommand = make()
        client.send(topic, key=cmd.bot_id.encode(), value=encode(cmd)).get(timeout=10)
    finally:
        client.close()
    return cmd


@dataclass(frozen=True, slots=True)
class AuditEntry:
    ts: datetime
    actor: str
    client: str
    action: str
    bot_id: str
    reason: str
    outcome: str  # requested, sent, failed: <why>, refused: <why>
    command_id: str | None = None

    def json(self) -> dict[str, Any]:
        record = asdict(self)
        record["ts"] = self.ts.isoformat()
        return record


def audit_entry(
    actor: str, client: str, action: str, bot_id: str, reason: str, outcome: str, command_id: str | None
) -> AuditEntry:
    return AuditEntry(datetime.now(UTC), actor, client, action, bot_id, reason, outcome, command_id)


class AuditLog:
    """The audit of control actions: the `api_audit` table when a database is set (pets api serve),
    else a JSON-lines file (pets run --api-port writes no database: the run's journal folder).
    The latest entries are kept in memory too, for GET /audit."""

    def __init__(self, dsn: str | None = None, path: Path | None = None, keep: int = 500) -> None:
        self.dsn = dsn
        self.path = path
        self.keep = keep
        self.entries: list[AuditEntry] = []
        self._lock = threading.Lock()

    def write(self, entry: AuditEntry) -> None:
        with self._lock:
            self.entries = [*self.entries[-(self.keep - 1) :], entry]
            if self.dsn:
                import psycopg

                with psycopg.connect(self.dsn, connect_timeout=5) as conn:
                    conn.execute(
                        "INSERT INTO api_audit (ts, actor, client, action, bot_id, reason, outcome, "
                        "command_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (
                            entry.ts, entry.actor, entry.client, entry.action, entry.bot_id,
                            entry.reason, entry.outcome, entry.command_id,
                        ),
                    )  # fmt: skip
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(entry.json()) + "\n")

    def latest(self, limit: int) -> list[dict[str, Any]]:
        return [e.json() for e in reversed(self.entries[-limit:])] if limit > 0 else []
