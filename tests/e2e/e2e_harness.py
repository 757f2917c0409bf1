"""Every flow as its own `pets flow run` process against the real broker and database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from pets.flows.trading_io import read_topics
from pets.pipelines.kafka_io import producer
from pets.schemas.codec import encode
from pets.schemas.market_data import MarketInfo
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings, project_root

PETS = str(Path(sys.executable).with_name("pets"))
FLOWS = ("market_state", "bots", "risk", "executor")


class Flows:
    """The four trading flows as subprocesses, isolated by topic prefix, database and state dir."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PETS_")},
            "PETS_MODE": "production",
            "PETS_KAFKA_BOOTSTRAP": settings.require_kafka(),
            "PETS_POSTGRES_DSN": settings.require_postgres(),
            "PETS_TOPIC_PREFIX": settings.topic_prefix,
            "PETS_STATE_DIR": str(settings.state_dir),
            "PETS_CONFIG_DIR": str(settings.config_dir),
        }

    def start(self, name: str, *options: str) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [PETS, "flow", "run", name, "--epoch-ms", "200", *options], env=self.env, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip

    def kill(self, name: str) -> None:
        """SIGKILL: a crash, no chance to snapshot or flush."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in list(self.procs.items()):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            del self.procs[name]

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.procs.items()}

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.log_dir.glob("*.log")))


def publish(
    settings: Settings, markets: Iterable[MarketInfo], frames: Iterable[Frame], speed: float = 10.0
) -> int:
    """MarketInfo on md.markets, then the frames on md.book in order, paced so that venue time runs
    `speed` times faster than the wall clock (the risk flow refuses intents priced off a book more than
    5 s of venue time older than the newest one, so an unpaced replay would only see stale books)."""
    registry = load_topic_registry(settings.config_dir)
    client = producer(settings, linger_ms=1)
    n = 0
    start_wall: float | None = None
    start_ts = 0
    try:
        for info in markets:
            client.send(
                registry.get("md.markets").full_name(settings.topic_prefix),
                key=info.condition_id.encode(),
                value=encode(info),
            )
        book = registry.get("md.book").full_name(settings.topic_prefix)
        for frame in frames:
            if start_wall is None:
                start_wall, start_ts = time.monotonic(), frame.ts_ms
            delay = start_wall + (frame.ts_ms - start_ts) / 1000 / speed - time.monotonic()
            if delay > 0:
                client.flush()
                time.sleep(delay)
            client.send(book, key=frame.market.encode(), value=frame.payload)
            n += 1
        client.flush(30)
    finally:
        client.close()
    return n


class Frame(NamedTuple):
    market: str
    ts_ms: int
    payload: bytes


def topic_messages(settings: Settings, *names: str) -> list[Any]:
    return list(read_topics(settings, names))


def wait_for(
    what: str, condition: Callable[[], Any], timeout: float, flows: Flows, every: float = 0.5
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        dead = [name for name, alive in flows.alive().items() if not alive]
        if dead or time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (dead flows: {dead})\n{flows.logs()}")
        time.sleep(every)


def settle(count: Callable[[], int], flows: Flows, quiet_s: float = 3.0, timeout: float = 60) -> int:
    """Wait until `count()` stops changing for `quiet_s` seconds (the flows caught up)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        value = count()
        if value != last:
            last, since = value, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return value
        time.sleep(0.5)
    raise AssertionError(f"the flows did not settle within {timeout} s\n{flows.logs()}")


class _Head(msgspec.Struct):
    market: str = ""
    timestamp: str = ""


def retimed(frames: Iterable[bytes], step_ms: int = 50) -> list[Frame]:
    """The frames with their venue timestamps compressed: the k-th distinct timestamp becomes
    first + k x step_ms (frames of one timestamp stay together; quiet minutes of a recording become
    one step), so a recording of hours replays in seconds of paced venue time."""
    decoder = msgspec.json.Decoder(_Head)
    out: list[Frame] = []
    mapping: dict[str, int] = {}
    for payload in frames:
        head = decoder.decode(payload)
        if not mapping:
            first = int(head.timestamp)
        ts = mapping.setdefault(head.timestamp, first + len(mapping) * step_ms)
        old = b'"timestamp":"' + head.timestamp.encode() + b'"'
        out.append(Frame(head.market, ts, payload.replace(old, b'"timestamp":"%d"' % ts)))
    return out


def shared_dir() -> Path:
    """The shared recorded data (the scenario falls back to the simulator without it)."""
    return Path(os.environ.get("PETS_SHARED_DATA", str(project_root().parent / "shared" / "data")))
