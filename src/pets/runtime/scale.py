"""`pets bench scale`: the market_state flow as a Bytewax cluster of 1, 2 and 4 workers on a simulated
universe of 5,000 markets, through the real broker (docs/deploy.md, "Flows across workers").

Per configuration (processes x workers per process), on fresh topics (md.book with its registry's
partitions, keyed by market):
- throughput: the backlog (the simulator's first frames, seeded) is on md.book before the cluster
  starts (`pets flow run market_state --no-recovery --workers W --process-id I --addresses ...` per
  process); frames/s = backlog frames / (the backlog's last top of book consumed - the first one, the
  count known from the same books in process), so the processes' start-up is left out;
- latency: then frames at a steady rate, each (market, venue time) group timed from its last frame
  produced to its top of book consumed from md.tob (as `pets bench market-state-latency`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pets.settings import Settings

CONFIGS = ((1, 1), (2, 1), (2, 2))  # (processes, workers each): 1, 2 and 4 workers
TOPICS = ("md.book", "md.markets", "md.tob", "dlq.market_data")


@dataclass(frozen=True, slots=True)
class ScaleResult:
    processes: int
    workers_per_process: int
    workers: int
    backlog_frames: int
    tops: int
    seconds: float
    frames_per_s: int
    cpu_s: float  # the cluster's CPU seconds over the same span (from its first top to the last)
    frames_per_cpu_s: int  # what one core does, busy: the basis of the projection (docs/deploy.md)
    paced_frames: int
    rate_target: int
    tops_timed: int
    p50_ms: float
    p99_ms: float


def universe(markets: int, backlog: int, paced: int, seed: int = 7) -> tuple[list[bytes], list[bytes]]:
    """The simulator's first frames of `markets` binary markets: the backlog, then the paced ones."""
    from pets.pipelines.simulator import MarketSimulator, SimParams

    frames = MarketSimulator(SimParams.feed(markets, seed)).take(backlog + paced)
    return frames[:backlog], frames[backlog : backlog + paced]


def expected_tops(frames: list[bytes]) -> int:
    """The tops of book the flow publishes for `frames` (the pure books in process): all but those of
    each market's last group, which wait for the market's next frame (published at end of input only)."""
    from pets.pipelines.market_data.embedded import run_embedded

    ended = False
    counts = [0, 0]  # before the end of input, at it

    def frames_then_end() -> Iterator[bytes]:
        nonlocal ended
        yield from frames
        ended = True

    def count(_: object) -> None:
        counts[ended] += 1

    run_embedded(frames_then_end(), on_top_of_book=count)
    return counts[0]


class _Tops:
    """Consumes md.tob from its start: arrival times, and the latency of the groups in `sent_ns`."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        from pets.pipelines.kafka_io import KAFKA_LOG

        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": "pets-bench-scale", "enable.auto.commit": False,
            "logger": KAFKA_LOG,
        })  # fmt: skip
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self.count = 0
        self.first = self.last = 0.0
        self.sent_ns: dict[tuple[str, int], int] = {}
        self.latencies_ns: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="md-tob-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            for message in self.consumer.consume(1000, 0.05):
                now = time.perf_counter()
                if message.error() is not None or not message.value():
                    continue
                self.count += 1
                self.first = self.first or now
                self.last = now
                if self.sent_ns:
                    top = json.loads(message.value() or b"{}")
                    sent = self.sent_ns.get((top["market"], top["ts_ms"]))
                    if sent is not None:
                        self.latencies_ns.append(int(now * 1e9) - sent)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.consumer.close()


def measure(
    settings: Settings,
    backlog: list[bytes],
    paced: list[bytes],
    processes: int,
    workers: int,
    rate: int,
    timeout_s: float = 120,
) -> ScaleResult:
    """One configuration on fresh prefixed topics (deleted afterwards)."""
    from confluent_kafka import Producer

    from pets.infra.procs import free_port
    from pets.pipelines.kafka_io import delete_topics, ensure_topics

    bootstrap = settings.require_kafka()
    expected, every_top = expected_tops(backlog), expected_tops(backlog + paced)
    scoped = replace(settings, topic_prefix=f"scale{uuid.uuid4().hex[:8]}.")
    ensure_topics(scoped, list(TOPICS))
    book = f"{scoped.topic_prefix}md.book"
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "1"})
    keys = [(head["market"], int(head["timestamp"])) for head in map(json.loads, backlog + paced)]
    for raw, (market, _) in zip(backlog, keys, strict=False):
        producer.produce(book, raw, key=market.encode())
        producer.poll(0)
    producer.flush(60)
    tops = _Tops(bootstrap, f"{scoped.topic_prefix}md.tob")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETS_")}
    env.update(
        PETS_MODE="production", PETS_KAFKA_BOOTSTRAP=bootstrap, PETS_TOPIC_PREFIX=scoped.topic_prefix,
        PETS_CONFIG_DIR=str(settings.config_dir), PETS_NATIVE=os.environ.get("PETS_NATIVE", "1"),
        PETS_POSTGRES_DSN="",
    )  # fmt: skip
    pets = str(Path(sys.executable).with_name("pets"))
    addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(processes))
    cluster = ["--process-id", "{i}", "--addresses", addresses] if processes > 1 else []
    flows = [
        subprocess.Popen(
            [pets, "flow", "run", "market_state", "--no-recovery", "--workers", str(workers),
             *(arg.format(i=i) for arg in cluster)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        for i in range(processes)
    ]
    try:
        deadline = time.monotonic() + timeout_s
        cpu_at_first: float | None = None
        while tops.count < expected:
            _check(flows, deadline)
            if cpu_at_first is None and tops.count:
                cpu_at_first = _cpu_s(flows)
            time.sleep(0.1)
        count, seconds = tops.count, tops.last - tops.first
        cpu = _cpu_s(flows) - (cpu_at_first or 0.0)
        start = time.perf_counter()
        for i, raw in enumerate(paced):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            key = keys[len(backlog) + i]
            tops.sent_ns[key] = time.perf_counter_ns()
            producer.produce(book, raw, key=key[0].encode())
            producer.poll(0)
        producer.flush(30)
        # the paced frames' tops in flight (a loaded machine takes longer than the 0.5 s it can take)
        settle = time.monotonic() + 30
        while tops.count < every_top and time.monotonic() < settle:
            _check(flows, deadline)
            time.sleep(0.1)
        _check(flows, deadline)
    finally:
        tops.close()
        for flow in flows:
            _stop(flow)
        delete_topics(scoped, [f"{scoped.topic_prefix}{name}" for name in TOPICS])
    ordered = sorted(tops.latencies_ns)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 2) if ordered else 0.0

    per_s = round(len(backlog) / seconds) if seconds else 0
    per_cpu_s = round(len(backlog) / cpu) if cpu else 0
    return ScaleResult(
        processes, workers, processes * workers, len(backlog), count, round(seconds, 2), per_s, round(cpu, 2),
        per_cpu_s, len(paced), rate, len(ordered), pct(0.5), pct(0.99),
    )  # fmt: skip


def _cpu_s(flows: list[subprocess.Popen[bytes]]) -> float:
    """The CPU seconds (user + system) the processes used so far (Linux /proc)."""
    total = 0
    for flow in flows:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{flow.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def _check(flows: list[subprocess.Popen[bytes]], deadline: float) -> None:
    for flow in flows:
        if flow.poll() is not None:
            said = flow.stderr.read().decode(errors="replace")[-2000:] if flow.stderr else ""
            raise RuntimeError(f"a market_state process exited ({flow.returncode}): {said}")
    if time.monotonic() > deadline:
        raise TimeoutError("the market_state cluster did not finish its backlog in time")


def _stop(flow: subprocess.Popen[bytes]) -> None:
    if flow.poll() is None:
        os.killpg(flow.pid, signal.SIGINT)  # leaves at once (cli/flow.py)
    try:
        flow.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(flow.pid, signal.SIGKILL)
        flow.wait(10)


def run(
    settings: Settings,
    markets: int,
    backlog_frames: int,
    paced_frames: int,
    rate: int,
    configs: tuple[tuple[int, int], ...] = CONFIGS,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    backlog, paced = universe(markets, backlog_frames, paced_frames)
    before = [round(x, 2) for x in os.getloadavg()]
    results = []
    for processes, workers in configs:
        progress(f"market_state: {processes} process(es) x {workers} worker(s)")
        results.append(measure(settings, backlog, paced, processes, workers, rate))
    after = [round(x, 2) for x in os.getloadavg()]
    return {
        "markets": markets, "cpus": os.cpu_count(), "load_average_before": before,
        "load_average_after": after, "results": results,
    }  # fmt: skip
