"""Sensors: retrain when enough markets resolved, and act on BatchCommands from ``batch.control``.

Both keep their position in the sensor cursor, which Dagster persists in its instance storage: the
resolved-market count at the last retrain, and the next Kafka offset per partition of the topic.
"""

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import msgspec

from pets.assets.markets.schedules import universe_job
from pets.assets.models.schedules import retrain_job, retrain_run_config
from pets.assets.resources import KafkaResource, PostgresResource
from pets.assets.whales.schedules import rankings_job
from pets.schemas.control import BatchCommand, DeadLetter

CONTROL_TOPIC = "batch.control"
DEAD_LETTER_TOPIC = "dlq.trading"  # undecodable control commands, like the other control topics
MIN_NEW_RESOLVED = 50
MAX_COMMANDS_PER_TICK = 100
POLL_TIMEOUT_MS = 1_000


@dg.sensor(
    name="resolved_markets_sensor",
    job=retrain_job,
    minimum_interval_seconds=600,
    description=f"Retrain when at least {MIN_NEW_RESOLVED} markets resolved since the last retrain.",
)
def resolved_markets_sensor(
    context: dg.SensorEvaluationContext, postgres: PostgresResource
) -> dg.SensorResult | dg.SkipReason:
    with postgres.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM markets WHERE closed AND winning_asset_id IS NOT NULL"
        ).fetchone()
    resolved = int(row[0]) if row else 0
    if context.cursor is None:
        return dg.SensorResult(skip_reason=f"baseline: {resolved} resolved markets", cursor=str(resolved))
    new = resolved - int(context.cursor)
    if new < MIN_NEW_RESOLVED:
        return dg.SkipReason(f"{new} newly resolved markets; retraining at {MIN_NEW_RESOLVED}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"resolved-{resolved}", run_config=retrain_run_config())],
        cursor=str(resolved),
    )


@dataclass
class ControlBatch:
    commands: list[BatchCommand] = field(default_factory=list)
    dead_letters: list[tuple[str, DeadLetter]] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)  # next offset to read per partition


def read_commands(
    kafka: KafkaResource, cursor: str | None, limit: int = MAX_COMMANDS_PER_TICK
) -> ControlBatch:
    """BatchCommands after the cursor's offsets (from the start of the topic without a cursor)."""
    from kafka import TopicPartition

    from pets.schemas.codec import decoder_for

    topic = kafka.ensure_topic(CONTROL_TOPIC)
    decoder = decoder_for(BatchCommand)
    offsets = {int(p): int(o) for p, o in json.loads(cursor).items()} if cursor else {}
    batch = ControlBatch(offsets=dict(offsets))
    consumer = kafka.consumer()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        for tp in partitions:
            if tp.partition in offsets:
                consumer.seek(tp, offsets[tp.partition])
            else:
                consumer.seek_to_beginning(tp)
        ends = consumer.end_offsets(partitions)
        while len(batch.commands) + len(batch.dead_letters) < limit:
            if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                break
            polled = consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=limit)
            if not polled:
                break
            for tp, records in polled.items():
                for record in records:
                    try:
                        batch.commands.append(decoder.decode(record.value))
                    except msgspec.DecodeError as exc:
                        key = record.key.decode(errors="replace") if record.key else CONTROL_TOPIC
                        batch.dead_letters.append(
                            (
                                key,
                                DeadLetter.from_bytes(
                                    "batch_control_sensor",
                                    str(exc),
                                    record.value or b"",
                                    ts_ns=time.time_ns(),
                                    topic=topic,
                                    key=record.key,
                                    partition=tp.partition,
                                    offset=record.offset,
                                ),
                            )
                        )
                    batch.offsets[tp.partition] = record.offset + 1
    finally:
        consumer.close()
    return batch


def run_request_for(command: BatchCommand, now: datetime) -> dg.RunRequest:
    """The run a command asks for; the command id is the run key (a re-read command is not re-run).
    Raises ValueError naming a bad argument."""
    tags = {"pets/command_id": command.command_id}
    if command.command == "retrain_model":
        return dg.RunRequest(
            run_key=command.command_id,
            job_name=retrain_job.name,
            tags=tags,
            run_config=retrain_run_config(command.args.get("data_dir")),
        )
    if command.command == "rank_whales":
        ranking: dict[str, Any] = {}
        if "ranking_date" in command.args:
            ranking["ranking_date"] = datetime.fromisoformat(command.args["ranking_date"]).date().isoformat()
        for name in ("min_trades", "top"):
            if name in command.args:
                ranking[name] = int(command.args[name])
        return dg.RunRequest(
            run_key=command.command_id,
            job_name=rankings_job.name,
            tags=tags,
            run_config={"ops": {"whale_rankings": {"config": ranking}}} if ranking else {},
        )
    day = command.args.get("date") or (now - timedelta(days=1)).date().isoformat()
    datetime.fromisoformat(day)  # a bad date is a bad command
    return dg.RunRequest(run_key=command.command_id, job_name=universe_job.name, tags=tags, partition_key=day)


@dg.sensor(
    name="batch_control_sensor",
    jobs=[retrain_job, rankings_job, universe_job],
    minimum_interval_seconds=30,
    description=f"Runs the job a BatchCommand on {CONTROL_TOPIC} asks for "
    "(retrain_model, rank_whales, refresh_universe).",
)
def batch_control_sensor(context: dg.SensorEvaluationContext, kafka: KafkaResource) -> dg.SensorResult:
    batch = read_commands(kafka, context.cursor)
    now = datetime.now(UTC)
    requests = []
    for command in batch.commands:
        try:
            requests.append(run_request_for(command, now))
        except ValueError as exc:
            reason = f"bad args for {command.command}: {exc}"
            batch.dead_letters.append(
                (
                    command.command,
                    DeadLetter.from_bytes(
                        "batch_control_sensor", reason, msgspec.json.encode(command), ts_ns=time.time_ns()
                    ),
                )
            )
    if batch.dead_letters:
        kafka.publish(DEAD_LETTER_TOPIC, batch.dead_letters)
        context.log.warning(f"{len(batch.dead_letters)} bad command(s) sent to {DEAD_LETTER_TOPIC}")
    cursor = json.dumps({str(p): o for p, o in sorted(batch.offsets.items())})
    if not requests:
        return dg.SensorResult(skip_reason=f"no new command on {CONTROL_TOPIC}", cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)
