"""`pets bench loop-latency`: frame in md.book -> approved order on order.exec, each flow a process.

The four trading flows run as `pets flow run market_state|bots|risk|executor` subprocesses under a
fresh topic prefix, with their recovery stores and epoch as deployed (every epoch close snapshots
the state: part of the latency), and no database (the flows' Kafka path is what is measured).
Simulator frames are produced to md.book at a steady rate, each frame's venue timestamp rewritten to
the wall-clock millisecond it is sent at (so the flows' venue clock is the real clock, as live), and
a consumer of order.exec takes the time each approved order arrives. An approval's latency is its
arrival time minus the send time of the frames it was priced off (`intent.source_ts_ms` names them).
The first seconds (flows warming up) are left out; risk's own cancel-alls are not orders priced off
a frame.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec

from pets.pipelines.simulator import MarketSimulator, SimParams
from pets.schemas.codec import decoder_for, encode
from pets.schemas.config import load_config
from pets.schemas.topics import load_topic_registry
from pets.settings import Mode, Settings

FLOWS = ("market_state", "bots", "risk", "executor")
READY_RATE = 200  # frames/s until the first approved order shows the whole chain is up
READY_TIMEOUT_S = 120.0
WARMUP_EPOCHS = 2  # then the full rate, untimed, past this many epoch closes (see measure_latency)
HOPS = ("md.tob", "order.intent", "order.exec")


class _Head(msgspec.Struct):
    market: str = ""
    timestamp: str = ""


def measure_latency(
    settings: Settings,
    *,
    rate: int,
    duration_s: float,
    progress: Callable[[str], None],
    epoch_ms: int = 5000,
    recovery: bool = True,
    hops: bool = False,
    partitions: int | None = None,
) -> dict[str, Any]:
    """`hops`: also time md.tob and order.intent (decoding every top of book costs this process CPU
    that the flows then lack on a small machine, so it is off by default). `partitions`: create every
    topic with this many partitions instead of the registry's (the flows read every partition through
    one consumer, flows/kafka_source.py; Bytewax's stock KafkaSource polled each with its own, 1 ms
    apiece). The result has each flow's CPU use while frames were sent."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    from pets.pipelines.kafka_io import delete_topics, ensure_topics

    prefix = f"bench{uuid.uuid4().hex[:8]}."
    state_dir = Path(tempfile.mkdtemp(prefix="pets-latency-"))
    bench = replace(
        settings, mode=Mode.PRODUCTION, topic_prefix=prefix, state_dir=state_dir, postgres_dsn=None
    )
    registry = load_topic_registry(settings.config_dir)
    if partitions is not None:
        registry = msgspec.structs.replace(
            registry, topics=tuple(msgspec.structs.replace(t, partitions=partitions) for t in registry.topics)
        )
        _create_topics(bench, registry)
    ensure_topics(bench)
    config = load_config(settings.config_dir)
    sim = MarketSimulator(SimParams.from_config(config.system.simulator, duration_ms=3_600_000))
    procs = _start_flows(bench, state_dir, epoch_ms, recovery)
    sent: dict[int, float] = {}  # rewritten venue ms -> wall time the frames were sent
    # per topic: (wall time received, venue ms of the frames the message derives from)
    watched = HOPS if hops else ("order.exec",)
    arrivals: dict[str, list[tuple[float, int]]] = {name: [] for name in watched}
    stop = threading.Event()
    # librdkafka (confluent-kafka, as Bytewax uses) on both ends: kafka-python would take the CPU
    # the flows need on a small machine
    brokers = bench.require_kafka()
    tail = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": "pets-latency",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 5,
        }
    )
    topics = {registry.get(name).full_name(prefix): name for name in watched}
    tail.assign([TopicPartition(t, p, 0) for t in topics for p in range(registry.get(topics[t]).partitions)])
    decoders = {name: decoder_for(registry.get(name)) for name in watched}

    def listen() -> None:
        while not stop.is_set():
            for record in tail.consume(500, 0.005):
                value, topic = record.value(), record.topic()
                if record.error() is not None or value is None or topic is None:
                    continue
                now = time.time()
                name = topics[topic]
                ts = _source_ms(name, decoders[name].decode(value))
                if ts is not None:
                    arrivals[name].append((now, ts))

    listener = threading.Thread(target=listen, name="order-exec-listener", daemon=True)
    listener.start()
    client = Producer({"bootstrap.servers": brokers, "linger.ms": 0, "acks": 1})
    book_topic = registry.get("md.book").full_name(prefix)
    markets_topic = registry.get("md.markets").full_name(prefix)
    try:
        for info in sim.markets:
            client.produce(markets_topic, key=info.condition_id.encode(), value=encode(info))
        client.flush()
        progress(f"flows starting ({', '.join(FLOWS)}); producing {rate} frames/s for {duration_s:g} s")
        # Untimed: frames at a low rate until the first approved order arrives (every flow imported,
        # its consumer fetching and its producer holding the topic metadata: a fixed 5 s sleep was
        # too short on a loaded machine and the backlog of a late flow made the first timed second's
        # p99 1-2 s), then the full rate past WARMUP_EPOCHS epoch closes: the first snapshots of
        # every key the full rate touches stalled the flows 0.4-0.6 s (md.tob p99 470 ms) once.
        feed = sim.frames()
        ready_s = time.monotonic()
        _paced(
            feed,
            READY_RATE,
            READY_TIMEOUT_S,
            client,
            book_topic,
            sent,
            until=lambda: bool(arrivals["order.exec"]),
        )
        if not arrivals["order.exec"]:
            raise RuntimeError(
                f"no approved order within {READY_TIMEOUT_S:g} s: see the flow logs in {state_dir}"
            )
        ready_s = time.monotonic() - ready_s
        _paced(feed, rate, WARMUP_EPOCHS * epoch_ms / 1000 + 1, client, book_topic, sent)
        timed_from = time.time()
        cpu_start = [_cpu_s(proc.pid) for proc in procs]
        frames = _paced(feed, rate, duration_s, client, book_topic, sent)
        cpu = [_cpu_s(proc.pid) - start for proc, start in zip(procs, cpu_start, strict=True)]
        time.sleep(2)  # the last approvals arrive
    finally:
        stop.set()
        listener.join(5)
        client.flush(10)
        tail.close()
        _stop(procs)
        delete_topics(bench, [spec.full_name(prefix) for spec in registry.topics])
        shutil.rmtree(state_dir, ignore_errors=True)
    start = timed_from
    latency = {
        name: sorted(
            (received - sent[ts]) * 1000 for received, ts in items if ts in sent and sent[ts] >= start
        )
        for name, items in arrivals.items()
    }
    approved = latency["order.exec"]
    # when the slowest approvals happened (s after timing began): a tail at start is warm-up, one
    # every epoch_ms is the snapshots
    slowest = sorted(
        ((received - sent[ts]) * 1000, sent[ts] - start)
        for received, ts in arrivals["order.exec"]
        if ts in sent and sent[ts] >= start
    )[-8:]
    result: dict[str, Any] = {
        "rate_frames_per_s": rate,
        "frames": frames,
        "seconds": duration_s,
        "approved_orders": len(approved),
        "p50_ms": _percentile(approved, 50),
        "p99_ms": _percentile(approved, 99),
        "max_ms": round(approved[-1], 2) if approved else None,
        "slowest_ms_at_s": [(round(ms, 1), round(at, 2)) for ms, at in reversed(slowest)],
        "ready_s": round(ready_s, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "flows": list(FLOWS),
        "epoch_ms": epoch_ms,
        "recovery": recovery,
        "partitions": partitions or "registry",
        # each flow's CPU use while frames were sent: near 100 % the flow is CPU-bound, latency queues
        "flow_cpu_pct": {name: round(100 * used / duration_s) for name, used in zip(FLOWS, cpu, strict=True)},
    }
    if hops:  # the same measure at the earlier hops: frame -> top of book -> intent
        for name, label in (("md.tob", "md_tob"), ("order.intent", "intent")):
            result[f"{label}_p50_ms"] = _percentile(latency[name], 50)
            result[f"{label}_p99_ms"] = _percentile(latency[name], 99)
    return result


def warm_broker(settings: Settings, seconds: float = 15.0, rate: int = 10_000) -> int:
    """Frames produced one request each at `rate`/s and fetched back at once, on a throwaway topic,
    for `seconds`: the first run after a broker start had p99 0.8-1.9 s, already at md.tob (the first
    hop), the later ones not; the broker's JIT compiles its produce and fetch paths in the background
    on a busy machine, so the warm-up lasts, rather than counting messages (60,000 in 0.5 s did not
    do). Returns the messages read back."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    from pets.pipelines.kafka_io import KAFKA_LOG, delete_topics, ensure_topics

    warm = replace(settings, topic_prefix=f"warmup{uuid.uuid4().hex[:8]}.")
    topic = load_topic_registry(settings.config_dir).get("md.book").full_name(warm.topic_prefix)
    ensure_topics(warm, ["md.book"])
    brokers = warm.require_kafka()
    client = Producer({"bootstrap.servers": brokers, "linger.ms": 0, "acks": 1, "logger": KAFKA_LOG})
    reader = Consumer({
        "bootstrap.servers": brokers, "group.id": "pets-warmup", "enable.auto.commit": False,
        "fetch.wait.max.ms": 5, "logger": KAFKA_LOG,
    })  # fmt: skip
    reader.assign([TopicPartition(topic, 0, 0)])
    frame = b'{"event_type":"price_change","market":"warmup","timestamp":"0"}' + b" " * 250
    read = sent = 0
    start = time.monotonic()
    try:
        while (elapsed := time.monotonic() - start) < seconds:
            while sent < elapsed * rate:
                client.produce(topic, key=b"warmup", value=frame)
                sent += 1
            client.poll(0)
            read += len(reader.consume(1000, 0.002))
        client.flush(30)
    finally:
        reader.close()
        delete_topics(warm, [topic])
    return read


def _source_ms(topic: str, message: Any) -> int | None:
    """The venue ms of the frames a message was derived from (None for risk's own cancel-alls)."""
    if topic == "md.tob":
        return int(message.ts_ms)
    intent = message if topic == "order.intent" else message.intent
    return None if intent.client_order_id.startswith("risk-") else int(intent.source_ts_ms)


def _paced(
    frames: Iterator[bytes],
    rate: int,
    duration_s: float,
    client: Any,
    topic: str,
    sent: dict[int, float],
    until: Callable[[], bool] = lambda: False,
) -> int:
    """Send frames at `rate` per second, each stamped with the wall millisecond it is sent at, for
    `duration_s` or until `until()`."""
    decoder = msgspec.json.Decoder(_Head)
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < duration_s and not until():
        due = int((time.monotonic() - start) * rate)
        while n < due:
            payload = next(frames)
            head = decoder.decode(payload)
            wall = time.time()
            ms = int(wall * 1000)
            sent.setdefault(ms, wall)
            payload = payload.replace(
                b'"timestamp":"' + head.timestamp.encode() + b'"', b'"timestamp":"%d"' % ms
            )
            client.produce(topic, key=head.market.encode(), value=payload)
            n += 1
        client.poll(0)
        time.sleep(0.002)
    return n


def _create_topics(settings: Settings, registry: Any) -> None:
    from pets.pipelines.kafka_io import admin_client, topic_configs

    admin = admin_client(settings)
    try:
        admin.create_topics(
            {
                spec.full_name(settings.topic_prefix): {
                    "num_partitions": spec.partitions,
                    "configs": topic_configs(spec),
                }
                for spec in registry.topics
            },
            raise_errors=False,
        )
    finally:
        admin.close()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))
    return round(values[index], 2)


def _start_flows(
    settings: Settings, state_dir: Path, epoch_ms: int, recovery: bool
) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETS_")}
    env.update(
        PETS_MODE="production",
        PETS_KAFKA_BOOTSTRAP=settings.require_kafka(),
        PETS_TOPIC_PREFIX=settings.topic_prefix,
        PETS_STATE_DIR=str(state_dir),
        PETS_CONFIG_DIR=str(settings.config_dir),
    )
    pets = str(Path(sys.executable).with_name("pets"))
    procs = []
    for name in FLOWS:
        log = (state_dir / f"{name}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [pets, "flow", "run", name, "--epoch-ms", str(epoch_ms)]
                + ([] if recovery else ["--no-recovery"]),
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
