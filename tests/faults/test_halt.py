"""`pets halt` with the risk flow down: the executor still cancels its orders, and the command says so.

Before: the executor cancelled only on risk's approved cancel-all (order.exec), and `pets halt` printed
"sent halt" and exited 0 whatever happened, so with the risk flow down the open orders stayed open.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from pets.pipelines.kafka_io import consumer, ensure_topics, producer
from pets.schemas.codec import decode, encode
from pets.schemas.orders import ApprovedOrder, OrderIntent
from pets.settings import Settings

PETS = str(Path(sys.executable).parent / "pets")
MARKET, YES = "0xhalt", "7001"
T0 = 1_750_000_000_000
TOPICS = [
    "md.book", "md.markets", "md.tob", "order.exec", "order.intent", "order.denied", "exec.report",
    "bot.control", "risk.alert", "pnl.snapshot", "dlq.trading",
]  # fmt: skip


def _env(settings: Settings, state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETS_")}
    env.update(
        PETS_MODE="local",  # no database: PETS_POSTGRES_DSN unset, and no infra.json in this state dir
        PETS_STATE_DIR=str(state_dir),
        PETS_TOPIC_PREFIX=settings.topic_prefix,
        PETS_KAFKA_BOOTSTRAP=settings.require_kafka(),
        PETS_CONFIG_DIR=str(settings.config_dir),
        PETS_NATIVE=os.environ.get("PETS_NATIVE", "1"),
    )
    return env


def _approved(cid: str, price: str) -> ApprovedOrder:
    intent = OrderIntent(
        client_order_id=cid, bot_id="bot_05", strategy_type="market_making", action="place", market=MARKET,
        asset_id=YES, side="BUY", price=D(price), size=D(10), post_only=True, source_ts_ms=T0,
        created_ns=T0 * 1_000_000,
    )  # fmt: skip
    return ApprovedOrder(intent=intent, size=D(10), approved_ns=T0 * 1_000_000, sequence=1)


class Reports:
    """exec.report as the executor writes it."""

    def __init__(self, settings: Settings) -> None:
        from kafka import TopicPartition

        self.client = consumer(settings)
        topic = f"{settings.topic_prefix}exec.report"
        parts = [TopicPartition(topic, p) for p in self.client.partitions_for_topic(topic) or ()]
        self.client.assign(parts)
        self.client.seek_to_beginning(*parts)
        self.seen: list[tuple[str, str]] = []

    def wait(
        self, until: Callable[[list[tuple[str, str]]], bool], timeout_s: float = 60
    ) -> list[tuple[str, str]]:
        deadline = time.monotonic() + timeout_s
        while not until(self.seen) and time.monotonic() < deadline:
            for records in self.client.poll(timeout_ms=200).values():
                for r in records:
                    report = decode("exec.report", r.value)
                    self.seen.append((report.client_order_id, report.kind))
        return self.seen


@pytest.fixture
def flows(prefixed_settings: Settings, tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [PETS, "flow", "run", name, "--no-recovery", "--epoch-ms", "500"],
            env=_env(prefixed_settings, tmp_path / "state"), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _halt(settings: Settings, tmp_path: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PETS, "halt", "--reason", "test", "--timeout", str(timeout_s)],
        env=_env(settings, tmp_path / "state"), capture_output=True, text=True, timeout=timeout_s + 60,
    )  # fmt: skip


@pytest.mark.integration
def test_halt_with_risk_down_cancels_through_the_executor_and_names_risk(
    prefixed_settings: Settings, tmp_path: Path, flows: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    settings = dataclasses.replace(prefixed_settings, postgres_dsn=None)
    ensure_topics(settings, TOPICS)
    book = {
        "event_type": "book", "asset_id": YES, "market": MARKET, "timestamp": str(T0),
        "bids": [{"price": "0.48", "size": "100"}], "asks": [{"price": "0.52", "size": "100"}],
    }  # fmt: skip
    executor = flows("executor")
    reports = Reports(settings)
    send = producer(settings)

    def place(cid: str, price: str) -> None:
        send.send(
            f"{settings.topic_prefix}order.exec", key=MARKET.encode(), value=encode(_approved(cid, price))
        )
        send.flush()

    try:
        send.send(f"{settings.topic_prefix}md.book", key=MARKET.encode(), value=json.dumps(book).encode())
        send.flush()
        # the executor reads md.book and order.exec in no fixed order: probe until it has the book
        for attempt in range(20):
            place(f"a{attempt}", "0.45")
            seen = reports.wait(lambda got, cid=f"a{attempt}": any(c == cid for c, _ in got), 30)  # type: ignore[misc]
            if (f"a{attempt}", "ack") in seen:
                break
        resting = {cid for cid, kind in reports.seen if kind == "ack"}
        assert len(resting) == 1, (tmp_path / "executor.log").read_text()[-3000:]
        place("b", "0.44")
        reports.wait(lambda got: ("b", "ack") in got)
        resting.add("b")

        down = _halt(settings, tmp_path, timeout_s=5)  # the risk flow is not running
        assert down.returncode != 0
        assert "not acknowledged within 5 s by: risk " in down.stderr, down.stderr
        assert "executor: 2 open orders cancelled" in down.stdout, down.stdout
        cancelled = reports.wait(lambda got: {(cid, "cancel") for cid in resting} <= set(got))
        assert {(cid, "cancel") for cid in resting} <= set(cancelled)
        assert executor.poll() is None

        risk = flows("risk")  # it reads bot.control from the start: the first halt reaches it too
        deadline = time.monotonic() + 60
        up = _halt(settings, tmp_path, timeout_s=15)
        while up.returncode != 0 and time.monotonic() < deadline and risk.poll() is None:
            up = _halt(settings, tmp_path, timeout_s=15)  # a first run may time out while risk starts
        assert up.returncode == 0, (up.stdout, up.stderr, (tmp_path / "risk.log").read_text()[-3000:])
        assert "risk: halted" in up.stdout and "executor: 0 open orders cancelled" in up.stdout
    finally:
        send.close()
        reports.client.close()
