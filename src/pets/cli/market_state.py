"""`pets bench market-state` (frames/s through parse + book + top of book) and `market-state-latency`."""

from __future__ import annotations

import contextlib
import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from pets.cli import settings_from_env
from pets.cli._output import echo_result, peak_rss_mb
from pets.cli.bench import bench
from pets.settings import Settings, SettingsError

DATA_HELP = (
    "Shared data folder with polymarket/l2 recordings (default: PETS_SHARED_DATA, else ../shared/data); "
    "simulated frames when it has none."
)


def load_recorded_frames(data_dir: Path) -> list[bytes]:
    """Every frame of every recording under polymarket/l2/ (in file order), [] when there are none."""
    frames: list[bytes] = []
    for path in sorted((data_dir / "polymarket" / "l2").glob("*.jsonl.gz")):
        with gzip.open(path) as lines:
            frames.extend(line.rstrip(b"\n") for line in lines if line.strip())
    return frames


@bench.command("market-state")
@click.option("--passes", default=1, show_default=True, help="Replay the input this many times.")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help=DATA_HELP,
)
@click.option("--synthetic-frames", default=64_825, show_default=True, help="Simulated frames per pass.")
@click.option("--messages", is_flag=True, help="Also hand every TopOfBook message to a consumer callback.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def bench_market_state(
    passes: int, data_dir: Path | None, synthetic_frames: int, messages: bool, as_json: bool
) -> None:
    """Frames/s through parse + L2 book + top-of-book features (embedded, one core)."""
    from pets.pipelines.market_data.embedded import run_embedded
    from pets.pipelines.simulator import simulated_frames
    from pets.schemas.market_data import TopOfBook

    data_dir = data_dir or settings_from_env().shared_data_dir
    frames = load_recorded_frames(data_dir)
    source = f"recordings in {data_dir / 'polymarket' / 'l2'}"
    if not frames:
        frames = simulated_frames(synthetic_frames)[:synthetic_frames]
        source = f"simulated (seed 7, {synthetic_frames} frames)"
    published = 0

    def count(_: TopOfBook) -> None:
        nonlocal published
        published += 1

    seconds = 0.0
    dead = 0
    for _ in range(passes):
        start = time.perf_counter()
        summary = run_embedded(frames, on_top_of_book=count if messages else None)
        seconds += time.perf_counter() - start
        dead += summary.dead_lettered
    total = len(frames) * passes
    result = {
        "input": source,
        "passes": passes,
        "frames": total,
        "dead_lettered": dead,
        "top_of_book_consumed": published,
        "seconds": round(seconds, 3),
        "frames_per_s": round(total / seconds) if seconds else None,
        "peak_rss_mb": peak_rss_mb(),
    }
    echo_result(result, as_json)


@bench.command("market-state-latency")
@click.option("--rate", default=2000, show_default=True, help="Frames per second produced to md.book.")
@click.option("--seconds", default=10.0, show_default=True, help="How long to produce at that rate.")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help=DATA_HELP,
)
@click.option("--db/--no-db", default=False, show_default=True, help="Let the flow write TimescaleDB too.")
@click.option(
    "--epoch-ms", default=1000, show_default=True, help="The flow's epoch (`pets flow run --epoch-ms`)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def bench_market_state_latency(
    rate: int, seconds: float, data_dir: Path | None, db: bool, epoch_ms: int, as_json: bool
) -> None:
    """Latency frame produced to md.book -> its top of book consumed from md.tob, through the real
    broker and the market_state flow running as its own process (`pets flow run market_state`)."""
    from pets.pipelines.simulator import simulated_frames

    settings = settings_from_env()
    count = int(rate * seconds)
    data_dir = data_dir or settings.shared_data_dir
    frames = load_recorded_frames(data_dir)[:count]
    source = f"recordings in {data_dir / 'polymarket' / 'l2'}"
    if len(frames) < count:
        frames = simulated_frames(count)[:count]
        source = f"simulated (seed 7, {count} frames)"
    try:
        result = _measure_latency(settings, frames, rate=rate, with_db=db, epoch_ms=epoch_ms)
    except (RuntimeError, TimeoutError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None
    out = {"input": source, **result, "peak_rss_mb": peak_rss_mb()}
    echo_result(out, as_json)


def _measure_latency(
    settings: Settings, frames: list[bytes], *, rate: int, with_db: bool, epoch_ms: int
) -> dict[str, Any]:
    """Run the flow as a process on fresh prefixed topics, produce at `rate`, time each top of book.

    A top of book is published once the last frame of its (market, venue timestamp) group is in,
    so its latency is counted from the moment that last frame was produced.
    """
    import dataclasses
    import os
    import signal
    import subprocess
    import sys
    import threading
    import uuid

    from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

    from pets.pipelines.kafka_io import delete_topics, ensure_topics

    stack = contextlib.ExitStack()
    bootstrap = settings.require_kafka()
    scoped = dataclasses.replace(settings, topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")
    names = ["md.book", "md.markets", "md.tob", "dlq.market_data"]
    ensure_topics(scoped, names)
    book_topic, tob_topic = f"{scoped.topic_prefix}md.book", f"{scoped.topic_prefix}md.tob"
    env = {
        **os.environ,
        "PETS_MODE": "production",  # only what is given here: Kafka, and PostgreSQL when asked
        "PETS_KAFKA_BOOTSTRAP": bootstrap,
        "PETS_TOPIC_PREFIX": scoped.topic_prefix,
        "PETS_POSTGRES_DSN": stack.enter_context(_scratch_database(settings.require_postgres()))
        if with_db
        else "",
    }
    pets = str(Path(sys.executable).parent / "pets")
    flow = subprocess.Popen(
        [pets, "flow", "run", "market_state", "--no-recovery", "--epoch-ms", str(epoch_ms)],
        env=env,
        stderr=subprocess.PIPE,
    )
    sent_ns: dict[tuple[str, int], int] = {}
    latencies_ns: list[int] = []
    stop = threading.Event()
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "pets-bench", "enable.auto.commit": False}
    )
    partitions = consumer.list_topics(tob_topic, timeout=10).topics[tob_topic].partitions
    consumer.assign([TopicPartition(tob_topic, p, OFFSET_END) for p in partitions])

    def consume() -> None:
        while not stop.is_set():
            message = consumer.poll(0.05)  # returns as soon as one message is there (consume() batches)
            now = time.perf_counter_ns()
            if message is None or message.error() is not None or not message.value():
                continue
            top = json.loads(message.value() or b"{}")
            sent = sent_ns.get((top["market"], top["ts_ms"]))
            if sent is not None:
                latencies_ns.append(now - sent)

    reader = threading.Thread(target=consume, name="md-tob-reader", daemon=True)
    reader.start()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "1"})
    keys = [(head["market"], int(head["timestamp"])) for head in map(json.loads, frames)]
    try:
        _wait_until_flowing(producer, book_topic, frames, keys, sent_ns, latencies_ns, flow)
        latencies_ns.clear()
        start = time.perf_counter()
        for i, (raw, key) in enumerate(zip(frames, keys, strict=True)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent_ns[key] = time.perf_counter_ns()
            producer.produce(book_topic, raw, key=key[0].encode())
            producer.poll(0)
        producer.flush()
        elapsed = time.perf_counter() - start
        time.sleep(1.0)  # the last tops in flight
    finally:
        stop.set()
        reader.join(5)
        consumer.close()
        flow.send_signal(signal.SIGINT)
        try:
            flow.wait(10)
        except subprocess.TimeoutExpired:
            flow.kill()
            flow.wait(10)
        delete_topics(scoped, [f"{scoped.topic_prefix}{n}" for n in names])
        stack.close()
    if not latencies_ns:
        errors = flow.stderr.read().decode(errors="replace")[-2000:] if flow.stderr else ""
        raise RuntimeError(f"no top of book came back from md.tob; the flow said: {errors}")
    ordered = sorted(latencies_ns)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 2)

    return {
        "frames": len(frames),
        "rate_target": rate,
        "rate_achieved": round(len(frames) / elapsed),
        "tops_timed": len(ordered),
        "with_db": with_db,
        "epoch_ms": epoch_ms,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1] / 1e6, 2),
    }


@contextlib.contextmanager
def _scratch_database(dsn: str) -> Iterator[str]:
    """A new migrated database next to `dsn` for one benchmark run, dropped afterwards."""
    import uuid

    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from pets.pipelines.migrations import migrate

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        params = conninfo_to_dict(dsn)
        params["dbname"] = name
        scratch = make_conninfo(**params)  # type: ignore[arg-type]
        migrate(scratch)
        yield scratch
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_until_flowing(
    producer: Any,
    topic: str,
    frames: list[bytes],
    keys: list[tuple[str, int]],
    sent_ns: dict[tuple[str, int], int],
    latencies_ns: list[int],
    flow: Any,
    timeout_s: float = 60,
) -> None:
    """Produce warm-up frames (the first ones again, a day earlier) until the flow answers."""
    deadline = time.monotonic() + timeout_s
    i = 0
    while not latencies_ns:
        if flow.poll() is not None:
            raise RuntimeError(f"the flow exited: {flow.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError("the market_state flow did not publish within 60 s")
        market, ts = keys[i % len(keys)]
        frame = json.loads(frames[i % len(frames)])
        frame["timestamp"] = str(ts - 86_400_000)
        sent_ns[market, ts - 86_400_000] = time.perf_counter_ns()
        producer.produce(topic, json.dumps(frame).encode(), key=market.encode())
        producer.flush()
        i += 1
        time.sleep(0.05)


commands: list[click.Command] = []  # the subcommands above live on `pets bench`
