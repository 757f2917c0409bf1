"""Issue 12 item 3: a killed executor loses no fill and tells no second story.

`pets flow run executor` runs as a process over the real broker and a fresh database; a stream of
approved orders and book frames goes in, in rounds whose outcome depends on how the two topics
interleave: a post-only BUY at 0.50 rests while the best ask is 0.51, then the ask falls to 0.50 and
fills it (had the frame come first, the order would cross and be refused), then an FAK SELL of the
tokens bought takes the 0.48 bid (had the buy not filled, "not enough balance"). The process is
killed with SIGKILL after several phases, mid-epoch, and restarted: its replay must tell the same
story. Checked: reports with one id have one content, no order is both refused and filled, the
positions the executor stores equal the sum of its published fills, every round filled (the
arithmetic of the rounds), and the database holds each report once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pets.flows.trading_io import read_topics
from pets.pipelines.kafka_io import ensure_topics, producer
from pets.pipelines.migrations import migrate
from pets.schemas.codec import encode
from pets.schemas.market_data import MarketInfo
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderIntent
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

pytestmark = pytest.mark.integration

PETS = str(Path(sys.executable).with_name("pets"))
MARKET, YES, NO = "0xcrash", "9001", "9002"
T0 = 1_750_000_000_000
EPOCH_MS = 3000  # recovery snapshots: a kill right after a phase lands before the next one
SIZE = Decimal(10)


class Executor:
    """`pets flow run executor` as a process of its own (killed with SIGKILL, as a crash)."""

    def __init__(self, settings: Settings, dsn: str, log: Path) -> None:
        self.log = log
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PETS_")},
            "PETS_MODE": "production",
            "PETS_NATIVE": "0",
            "PETS_KAFKA_BOOTSTRAP": settings.require_kafka(),
            "PETS_POSTGRES_DSN": dsn,
            "PETS_TOPIC_PREFIX": settings.topic_prefix,
            "PETS_STATE_DIR": str(settings.state_dir),
            "PETS_CONFIG_DIR": str(settings.config_dir),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [PETS, "flow", "run", "executor", "--epoch-ms", str(EPOCH_MS)],
                env=self.env, stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)
        self.proc.wait(20)
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Stream:
    """The inputs, produced one by one with a pause, so the live executor takes them in this order."""

    def __init__(self, settings: Settings) -> None:
        registry = load_topic_registry(settings.config_dir)
        self.topics = {n: registry.get(n).full_name(settings.topic_prefix) for n in ("md.book", "order.exec")}
        self.client = producer(settings, linger_ms=0)
        self.rounds = 0
        self.ts = T0

    def send(self, topic: str, value: bytes, pause_s: float = 0.15) -> None:
        self.client.send(self.topics[topic], key=MARKET.encode(), value=value)
        self.client.flush(30)
        time.sleep(pause_s)

    def book(self, ts: int, bid: str, ask: str) -> None:
        for asset, (b, a) in ((YES, (bid, ask)), (NO, (_flip(ask), _flip(bid)))):
            frame = (
                f'{{"event_type":"book","asset_id":"{asset}","market":"{MARKET}","timestamp":"{ts}",'
                f'"bids":[{{"price":"{b}","size":"1000"}}],"asks":[{{"price":"{a}","size":"1000"}}]}}'
            )
            self.send("md.book", frame.encode(), 0.0)
        time.sleep(0.15)

    def round(self) -> None:
        """Book at 0.48/0.51, a post-only BUY at 0.50, the ask falls to 0.50, an FAK SELL at 0.47."""
        k, ts = self.rounds, self.ts
        self.book(ts, "0.48", "0.51")
        self.send("order.exec", encode(_approved(f"buy-{k}", "BUY", "0.50", ts, post_only=True)))
        self.book(ts + 100, "0.48", "0.50")
        self.send("order.exec", encode(_approved(f"sell-{k}", "SELL", "0.47", ts + 100, order_type="FAK")))
        self.rounds += 1
        self.ts += 1000

    def tick(self) -> None:
        """A quiet book frame a P&L snapshot interval later: the executor answers with pnl.snapshot."""
        self.ts += 10_000
        self.book(self.ts, "0.48", "0.51")
        self.ts += 1000


def _flip(price: str) -> str:
    return str(Decimal(1) - Decimal(price))


def _approved(
    client_id: str, side: Any, price: str, ts: int, *, post_only: bool = False, order_type: Any = "GTC"
) -> ApprovedOrder:
    intent = OrderIntent(
        client_order_id=client_id, bot_id="bot_05", strategy_type="market_making", action="place",
        market=MARKET, asset_id=YES, side=side, price=Decimal(price), size=SIZE, order_type=order_type,
        post_only=post_only, category="sports", source_ts_ms=ts, created_ns=ts * 1_000_000,
    )  # fmt: skip
    return ApprovedOrder(intent=intent, size=SIZE, approved_ns=ts * 1_000_000, sequence=1)


def _wait(what: str, condition: Callable[[], bool], executor: Executor, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if not executor.alive() or time.monotonic() > deadline:
            log = executor.log.read_text()[-4000:] if executor.log.is_file() else ""
            raise AssertionError(f"timed out waiting for {what}: {condition.__doc__ or ''}\n{log}")
        time.sleep(0.2)


@pytest.fixture
def crash_settings(
    prefixed_settings: Settings, fresh_db: str, tmp_path: Path
) -> Iterator[tuple[Settings, str]]:
    migrate(fresh_db)
    settings = replace(prefixed_settings, postgres_dsn=fresh_db, state_dir=tmp_path / "state")
    ensure_topics(settings)
    yield settings, fresh_db


def test_a_killed_executor_replays_the_same_reports_and_loses_no_fill(
    crash_settings: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, dsn = crash_settings
    info = MarketInfo(
        condition_id=MARKET, market_id="1", question="q", slug="crash", category="sports",
        token_ids=(YES, NO), outcomes=("Yes", "No"), neg_risk=False, tick_size=Decimal("0.01"),
        min_order_size=Decimal(5), active=True, closed=False, accepting_orders=True,
    )  # fmt: skip
    stream = Stream(settings)
    registry = load_topic_registry(settings.config_dir)
    markets_topic = registry.get("md.markets").full_name(settings.topic_prefix)
    stream.client.send(markets_topic, key=MARKET.encode(), value=encode(info))
    executor = Executor(settings, dsn, tmp_path / "executor.log")

    def reports() -> list[ExecutionReport]:
        return [r for r in read_topics(settings, ["exec.report"]) if isinstance(r, ExecutionReport)]

    def snapshot_ms() -> int:
        return max((s.ts_ns // 1_000_000 for s in read_topics(settings, ["pnl.snapshot"])), default=0)

    def settled(rounds: int) -> Callable[[], bool]:
        def done() -> bool:
            got = {(r.report_id, r.reason) for r in reports()}
            done.__doc__ = str(sorted(got, key=str)[-8:])
            return len(got) >= 4 * rounds  # ack + fill per order

        return done

    def consuming() -> None:
        """Back to live input: the replay is over once the executor answers a new frame."""
        stream.tick()
        tick_ms = stream.ts - 1000
        _wait("the executor to take input", lambda: snapshot_ms() >= tick_ms, executor)

    executor.start()
    try:
        consuming()
        stream.round()
        _wait("the first round", settled(1), executor)
        time.sleep(EPOCH_MS / 1000 + 1)  # a recovery snapshot exists: restarts resume from the store
        for phase in range(3):
            for _ in range(3):
                stream.round()
            _wait(f"phase {phase}", settled(stream.rounds), executor)
            executor.kill()  # SIGKILL mid-epoch: the phase is replayed on restart
            executor.start()
            consuming()
        executor.kill(signal.SIGTERM)
    finally:
        if executor.alive():
            executor.kill()
        stream.client.close()

    published = reports()
    by_id: dict[str, set[bytes]] = defaultdict(set)
    for report in published:
        by_id[report.report_id].add(encode(report))
    assert {k: len(v) for k, v in by_id.items() if len(v) > 1} == {}, "one report id, two contents"
    unique = {r.report_id: r for r in published}
    kinds: dict[str, set[str]] = defaultdict(set)
    for report in unique.values():
        kinds[report.client_order_id].add(report.kind)
    assert [o for o, k in kinds.items() if "reject" in k and k & {"ack", "fill", "partial_fill"}] == []
    # the rounds' own arithmetic: every buy rested then filled at 0.50, every sell took the 0.48 bid
    fills = {(r.client_order_id, r.last_px, r.last_qty) for r in unique.values() if r.last_qty > 0}
    expected = {(f"buy-{k}", Decimal("0.50"), SIZE) for k in range(stream.rounds)}
    expected |= {(f"sell-{k}", Decimal("0.48"), SIZE) for k in range(stream.rounds)}
    assert fills == expected
    net: dict[str, Decimal] = defaultdict(Decimal)
    for r in unique.values():
        net[r.asset_id] += r.last_qty if r.side == "BUY" else -r.last_qty
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT asset_id, qty FROM positions WHERE bot_id = 'bot_05'").fetchall()
        rows = conn.execute("SELECT report_id, count(*) FROM execution_reports GROUP BY report_id").fetchall()
    assert dict(stored) == dict(net)  # the positions are the sum of the published fills
    assert {report_id for report_id, _ in rows} == set(unique)
    assert [row for row in rows if row[1] > 1] == []
