"""Fault scenarios over a real broker and database (`pets bench faults`, tests/faults/).

Each scenario runs a trading flow as `pets flow run NAME` processes, feeds it a steady stream of
inputs and disrupts it while it works: `kill -9` of the flow at several points (mid-stream, right
after a restart while it replays, after a recovery snapshot), or the broker and the database
stopped and started again. Then it counts, from what the flow published and stored:
- `lost`: inputs that never got their output (an intent never decided, a frame without its top; for
  the bots, intents an undisturbed bots flow fed the same stream proposed and the disrupted did not);
- `duplicated`: outputs published twice with different content (an order approved twice, a top of
  book told two ways, an intent id with two contents or unlike the reference's) plus rows the
  database holds more than once for one key.
The target is zero of each. The services are the caller's: the bench starts private ones
(`private_stack`), never the shared broker and database other work runs on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from pets.settings import Mode, Settings

EPOCH_MS = 2000  # recovery snapshots: kills land both before and after one
MS = 1_000_000
STARTUP_S = 3.0  # from a flow's start line to its consumer reading


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    scenario: str
    inputs: int
    outputs: int
    lost: int
    duplicated: int
    seconds: float
    detail: str = ""


class FlowProcess:
    """`pets flow run NAME [ARGS]` as a process of its own (killed with SIGKILL, as a crash); `args`:
    e.g. a cluster process's --workers, --process-id and --addresses."""

    def __init__(
        self, name: str, settings: Settings, log: Path, args: tuple[str, ...] = (), epoch_ms: int = EPOCH_MS
    ) -> None:
        self.name = name
        self.args = args
        self.log = log
        self.epoch_ms = epoch_ms
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PETS_")}
        self.env.update(
            PETS_MODE="production", PETS_NATIVE=os.environ.get("PETS_NATIVE", "0"),
            PETS_KAFKA_BOOTSTRAP=settings.require_kafka(), PETS_TOPIC_PREFIX=settings.topic_prefix,
            PETS_STATE_DIR=str(settings.state_dir), PETS_CONFIG_DIR=str(settings.config_dir),
        )  # fmt: skip
        if settings.postgres_dsn:
            self.env["PETS_POSTGRES_DSN"] = settings.postgres_dsn
        self.proc: subprocess.Popen[bytes] | None = None
        self.launched = 0

    def start(self) -> None:
        self.launched += 1
        pets = str(Path(sys.executable).with_name("pets"))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [pets, "flow", "run", self.name, "--epoch-ms", str(self.epoch_ms), *self.args],
                env=self.env, stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(20)
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def starts(self) -> int:
        """How many times the process started (its log's start lines): restarts after a kill, or
        after it gave up while its broker was down."""
        return self.log.read_text(errors="replace").count(f"flow {self.name} starting (")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.is_file() else ""


@contextlib.contextmanager
def private_stack(base: Settings) -> Iterator[Settings]:
    """A Kafka broker and a PostgreSQL of our own (pets.infra in a temporary state dir, free ports):
    the scenarios stop and start these, never the shared ones."""
    import shutil

    from pets.infra import stack

    state = Path(tempfile.mkdtemp(prefix="pets-faults-"))
    state.chmod(0o755)  # the postgres system user reaches its cluster here (else it goes to /tmp)
    private = replace(base, state_dir=state, kafka_bootstrap=None, postgres_dsn=None)
    try:
        started = stack.up(private)
        addresses = {started["kafka"].address, started["postgres"].address}
        if addresses & {base.kafka_bootstrap, base.postgres_dsn}:
            raise RuntimeError(f"private services answered at a shared address: {sorted(addresses)}")
        yield replace(
            private, kafka_bootstrap=started["kafka"].address, postgres_dsn=started["postgres"].address
        )
    finally:
        stack.down(private)
        shutil.rmtree(stack.stack_for(private).postgres.dir, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


def _isolated(settings: Settings, run_dir: Path, database: bool = True) -> Settings:
    """A fresh topic prefix, a fresh database (migrated; none when `database` is false) and a state
    dir of this scenario's own."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from pets.pipelines.kafka_io import ensure_topics
    from pets.pipelines.migrations import migrate

    isolated = replace(
        settings, mode=Mode.PRODUCTION, topic_prefix=f"f{uuid.uuid4().hex[:8]}.", postgres_dsn=None,
        state_dir=run_dir,
    )  # fmt: skip
    if database:
        dsn = settings.require_postgres()
        name = f"faults_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        isolated = replace(isolated, postgres_dsn=make_conninfo(dsn, dbname=name))
        migrate(isolated.require_postgres())
    ensure_topics(isolated)
    return isolated


def _drop(settings: Settings, admin_dsn: str | None) -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from pets.pipelines.kafka_io import delete_topics, existing_topics

    if settings.postgres_dsn and admin_dsn:
        name = conninfo_to_dict(settings.postgres_dsn)["dbname"]
        with contextlib.suppress(Exception), psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with contextlib.suppress(Exception):
        delete_topics(settings, [t for t in existing_topics(settings) if t.startswith(settings.topic_prefix)])


class _Feed:
    """Produces inputs from a thread at a steady rate until stopped (librdkafka buffers and retries
    while the broker is down, so the feed goes on through a broker restart). `mirror`: the same
    stream to a second topic prefix too (a reference run). `ahead_ms`: topics whose messages are
    stamped (Kafka CreateTime) that far ahead, as a producer whose clock runs ahead would."""

    def __init__(
        self,
        settings: Settings,
        messages: Iterator[tuple[str, str, bytes]],
        rate: float,
        mirror: Settings | None = None,
        ahead_ms: dict[str, int] | None = None,
    ) -> None:
        from confluent_kafka import Producer

        from pets.pipelines.kafka_io import KAFKA_LOG
        from pets.schemas.topics import load_topic_registry

        registry = load_topic_registry(settings.config_dir)
        prefixes = [settings.topic_prefix] + ([mirror.topic_prefix] if mirror else [])
        self.names = {spec.name: [spec.full_name(p) for p in prefixes] for spec in registry.topics}
        self.client = Producer({
            "bootstrap.servers": settings.require_kafka(), "linger.ms": 5, "acks": "all",
            "enable.idempotence": True, "message.timeout.ms": 300_000, "logger": KAFKA_LOG,
        })  # fmt: skip
        self.messages = messages
        self.rate = rate
        self.ahead_ms = ahead_ms or {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="faults-feed", daemon=True)

    def _run(self) -> None:
        pause = 1 / self.rate
        for topic, key, value in self.messages:
            if self.stop.is_set():
                break
            stamp = time.time_ns() // MS + self.ahead_ms.get(topic, 0)
            for name in self.names[topic]:
                self.client.produce(name, key=key.encode(), value=value, timestamp=stamp)
            self.client.poll(0)
            time.sleep(pause)
        self.client.flush(300)

    def __enter__(self) -> _Feed:
        self.thread.start()
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is not None:
            self.stop.set()
        self.thread.join(320)  # every input is sent, however long the disruption took


# --- the inputs ---------------------------------------------------------------------------------


def _market(n: int) -> Any:
    from pets.schemas.market_data import MarketInfo

    return MarketInfo(
        condition_id=f"fm{n}", market_id=f"fg{n}", question="?", slug=f"fm{n}", category="sports",
        token_ids=(f"fy{n}", f"fn{n}"), outcomes=("Yes", "No"), neg_risk=False, tick_size=Decimal("0.01"),
        min_order_size=Decimal(5), active=True, closed=False, accepting_orders=True,
    )  # fmt: skip


def _top(n: int, ts_ms: int) -> Any:
    from pets.schemas.market_data import TopOfBook

    d = Decimal
    return TopOfBook(
        asset_id=f"fy{n}", market=f"fm{n}", ts_ms=ts_ms, best_bid=d("0.49"), best_ask=d("0.51"),
        best_bid_size=d(100), best_ask_size=d(100), mid=d("0.50"), microprice=d("0.50"), spread=d("0.02"),
        imbalance=d(0), tick_size=d("0.01"), stale=False, paired_asset_id=None, ask_sum=None, bid_sum=None,
        seq=ts_ms,
    )  # fmt: skip


def _intent(n: int, cid: str, ts_ms: int) -> Any:
    from pets.schemas.orders import OrderIntent

    return OrderIntent(
        client_order_id=cid, bot_id="bot_01", strategy_type="arbitrage", action="place", market=f"fm{n}",
        asset_id=f"fy{n}", side="BUY", price=Decimal("0.51"), size=Decimal(5), category="sports",
        source_ts_ms=ts_ms, created_ns=ts_ms * MS,
    )  # fmt: skip


def _risk_inputs(t0: int, count: int, sent: list[str]) -> Iterator[tuple[str, str, bytes]]:
    """Markets, then a fresh top of book per market every 10 intents (100 ms of venue time apart)."""
    from pets.schemas.codec import encode

    markets = 5
    for n in range(markets):
        yield "md.markets", f"fm{n}", encode(_market(n))
    for i in range(count):
        ts = t0 + i * 100
        if i % 10 == 0:
            for n in range(markets):
                yield "md.tob", f"fm{n}", encode(_top(n, ts))
        cid = f"fi-{i}"
        sent.append(cid)
        yield "order.intent", f"fm{i % markets}", encode(_intent(i % markets, cid, ts))


def _quote_inputs(t0: int, count: int) -> Iterator[tuple[str, str, bytes]]:
    """Markets, then the YES and NO tops of one market after another, each market's mid moving
    0.50 <-> 0.52 every second of venue time: the market makers re-quote at every move (2 ticks, their
    interval 1 s). All on one partition (one key): Bot 8 is one instance across markets, so how the
    markets interleave is part of its input, and the reference run must take the same order."""
    from msgspec.structs import replace as changed

    from pets.schemas.codec import encode

    markets = 5
    for n in range(markets):
        yield "md.markets", f"fm{n}", encode(_market(n))
    for i in range(count):
        n, ts = i % markets, t0 + i * 200
        bid = Decimal("0.49") + (i // markets) % 2 * Decimal("0.02")
        ask = bid + Decimal("0.02")
        mid = (bid + ask) / 2
        sums = {"ask_sum": ask + 1 - bid, "bid_sum": bid + 1 - ask}
        yes = changed(
            _top(n, ts), best_bid=bid, best_ask=ask, mid=mid, microprice=mid, paired_asset_id=f"fn{n}", **sums
        )
        no = changed(
            yes, asset_id=f"fn{n}", best_bid=1 - ask, best_ask=1 - bid, mid=1 - mid, microprice=1 - mid,
            paired_asset_id=f"fy{n}",
        )  # fmt: skip
        yield "md.tob", "fm", encode(yes)
        yield "md.tob", "fm", encode(no)


def _book_inputs(t0: int, count: int, sent: list[tuple[str, int]]) -> Iterator[tuple[str, str, bytes]]:
    """Book snapshots of one token per market (a lone token: its top follows when its next frame
    arrives), each with a new best bid, 10 ms of venue time apart."""
    import json

    from pets.schemas.codec import encode

    markets = 5
    for n in range(markets):
        yield "md.markets", f"fm{n}", encode(_market(n))
    for i in range(count):
        n, ts = i % markets, t0 + i * 10
        bid = f"0.{10 + i % 80:02d}"
        frame = {
            "event_type": "book", "asset_id": f"fy{n}", "market": f"fm{n}", "timestamp": str(ts),
            "hash": f"h{i}", "bids": [{"price": bid, "size": "10"}],
            "asks": [{"price": "0.95", "size": "10"}],
        }  # fmt: skip
        sent.append((f"fy{n}", ts))
        yield "md.book", f"fm{n}", json.dumps(frame).encode()


# --- counting -----------------------------------------------------------------------------------


def _contents(settings: Settings, topics: list[str], key: Callable[[Any], Any]) -> dict[Any, set[bytes]]:
    from pets.flows.trading_io import read_topics
    from pets.schemas.codec import encode

    seen: dict[Any, set[bytes]] = defaultdict(set)
    for message in read_topics(settings, topics):
        k = key(message)
        if k is not None:
            seen[k].add(encode(message))
    return seen


def _db_duplicates(settings: Settings, query: str) -> int:
    import psycopg

    with psycopg.connect(settings.require_postgres()) as conn:
        return sum(int(n) - 1 for (n,) in conn.execute(query).fetchall())


def _wait(what: str, done: Callable[[], bool], flows: list[FlowProcess], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        for flow in flows:
            if not flow.alive():
                raise RuntimeError(f"{flow.name} died waiting for {what}:\n{flow.tail()}")
        time.sleep(0.5)
    return True


def _started(flow: FlowProcess) -> bool:
    return f"flow {flow.name} starting (" in flow.tail()


# --- disruptions --------------------------------------------------------------------------------

Disrupt = Callable[[FlowProcess, Settings], None]
Scenario = Callable[[Settings, Disrupt, str], ScenarioResult]


def kill_9_at_several_points(flow: FlowProcess, settings: Settings) -> None:
    """SIGKILL 3 s after the flow began running (mid-stream), again 0.5 s after the restarted flow
    began (while it replays what followed its snapshot), and again after an epoch's recovery
    snapshot; restarted at once each time. "Began": its start line, after its imports."""
    for wait_s in (3.0, 0.5, EPOCH_MS / 1000 + 1.5):
        _wait("the flow to begin", lambda: flow.starts() >= flow.launched, [flow], 60)
        time.sleep(wait_s)
        flow.kill()
        flow.start()


def services_stopped_and_restarted(flow: FlowProcess, settings: Settings) -> None:
    """The (private) broker stopped for 3 s and started again, then the database likewise, with the
    flow and the feed running; the flow is restarted when it gave up while its broker was gone.
    `settings`: those of the services (their state dir), which must be the ones the flow uses."""
    from pets.infra import stack

    services = stack.stack_for(settings)
    if services.kafka.bootstrap() != settings.kafka_bootstrap or services.postgres.status() is None:
        raise RuntimeError(f"no broker and database of {settings.state_dir} serve this scenario")
    time.sleep(2)
    if not services.kafka.stop():
        raise RuntimeError("the broker was not running")
    time.sleep(3)
    services.kafka.start()
    time.sleep(2)
    if not services.postgres.stop():
        raise RuntimeError("the database was not running")
    time.sleep(3)
    services.postgres.start()
    if not flow.alive():
        flow.kill()
        flow.start()


# --- scenarios ----------------------------------------------------------------------------------


def risk_scenario(settings: Settings, disrupt: Disrupt, label: str, intents: int = 150) -> ScenarioResult:
    """Intents at 20/s through the risk flow while it is disrupted: each is decided exactly once
    (order.exec or order.denied, and one row in approved_orders/order_denials)."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pets-faults-risk-") as run_dir:
        isolated = _isolated(settings, Path(run_dir))
        flow = FlowProcess("risk", isolated, Path(run_dir) / "risk.log")
        sent: list[str] = []
        t0 = time.time_ns() // MS - 3_600_000
        try:
            flow.start()
            with _Feed(isolated, _risk_inputs(t0, intents, sent), rate=20):
                disrupt(flow, settings)  # the services' settings: their state dir
            ids = set(sent)

            def decisions() -> dict[Any, set[bytes]]:
                cid = lambda d: d.intent.client_order_id if d.intent.client_order_id in ids else None  # noqa: E731
                return _contents(isolated, ["order.exec", "order.denied"], cid)

            _wait("every intent decided", lambda: len(decisions()) >= len(ids), [flow], 120)
            time.sleep(EPOCH_MS / 1000)  # the rows of the last epoch
            decided = decisions()
            published_twice = sum(len(v) - 1 for v in decided.values())
            rows_twice = _db_duplicates(
                isolated,
                "SELECT count(*) FROM (SELECT client_order_id FROM approved_orders UNION ALL "
                "SELECT client_order_id FROM order_denials) d GROUP BY client_order_id HAVING count(*) > 1",
            )
            starts = flow.starts()
            flow.kill(signal.SIGTERM)
        finally:
            flow.kill()
            _drop(isolated, settings.require_postgres())
    return ScenarioResult(
        f"{label} risk", len(ids), len(decided), len(ids - set(decided)), published_twice + rows_twice,
        round(time.monotonic() - start, 1),
        f"{published_twice} published twice, {rows_twice} rows twice; {starts} flow starts",
    )  # fmt: skip


def market_state_scenario(
    settings: Settings, disrupt: Disrupt, label: str, frames: int = 600
) -> ScenarioResult:
    """Book frames at 50/s (12 s: the kills land mid-stream) through market_state while it is
    disrupted: every frame's top of book is published (one content per asset and time) and stored
    once in top_of_book."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pets-faults-md-") as run_dir:
        isolated = _isolated(settings, Path(run_dir))
        flow = FlowProcess("market_state", isolated, Path(run_dir) / "market_state.log")
        sent: list[tuple[str, int]] = []
        t0 = time.time_ns() // MS - 3_600_000
        try:
            flow.start()
            with _Feed(isolated, _book_inputs(t0, frames, sent), rate=50):
                disrupt(flow, settings)  # the services' settings: their state dir
            # the last frame of each token waits for its next one: those are not counted
            expected = set(sent[: len(sent) - 5])

            def tops() -> dict[Any, set[bytes]]:
                return _contents(isolated, ["md.tob"], lambda t: (t.asset_id, t.ts_ms))

            _wait("every top of book", lambda: expected <= set(tops()), [flow], 120)
            time.sleep(EPOCH_MS / 1000)
            published = tops()
            told_twice = sum(len(v) - 1 for v in published.values())
            rows_twice = _db_duplicates(
                isolated, "SELECT count(*) FROM top_of_book GROUP BY asset_id, ts HAVING count(*) > 1"
            )
            starts = flow.starts()
            flow.kill(signal.SIGTERM)
        finally:
            flow.kill()
            _drop(isolated, settings.require_postgres())
    return ScenarioResult(
        f"{label} market_state", len(expected), len(published), len(expected - set(published)),
        told_twice + rows_twice, round(time.monotonic() - start, 1),
        f"{told_twice} tops told two ways, {rows_twice} rows twice; {starts} flow starts",
    )  # fmt: skip


def bots_scenario(settings: Settings, disrupt: Disrupt, label: str, steps: int = 300) -> ScenarioResult:
    """Tops of book at 25 markets' moves/s through two bots flows fed the same stream: one disrupted,
    one left alone (the reference). Bots decide per market, so the disrupted flow must propose the
    reference's intents: each client order id once, with the reference's content."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pets-faults-bots-") as run_dir:
        isolated = _isolated(settings, Path(run_dir) / "disrupted", database=False)
        reference = _isolated(settings, Path(run_dir) / "reference", database=False)
        flow = FlowProcess("bots", isolated, Path(run_dir) / "bots.log")
        calm = FlowProcess("bots", reference, Path(run_dir) / "bots-reference.log")
        t0 = time.time_ns() // MS - 3_600_000
        inputs = list(_quote_inputs(t0, steps))
        markets = [m for m in inputs if m[0] == "md.markets"]
        try:
            # the markets first, read by both flows before any top: a top of an unknown market is
            # ignored, so a race between the two topics at start would make the runs differ
            with _Feed(isolated, iter(markets), rate=1000, mirror=reference):
                pass
            flow.start()
            calm.start()
            _wait("the bots flows to start", lambda: _started(flow) and _started(calm), [flow, calm], 60)
            time.sleep(STARTUP_S)
            with _Feed(isolated, iter(inputs[len(markets) :]), rate=50, mirror=reference):
                disrupt(flow, settings)  # the services' settings: their state dir

            got, expected = _settled_intents(
                (flow, isolated), (calm, reference), f"both bots flows to settle on {len(inputs)} inputs"
            )
        finally:
            flow.kill()
            calm.kill()
            _drop(isolated, None)
            _drop(reference, None)
    return _intents_result(f"{label} bots", len(inputs), got, expected, start)


def _settled_intents(
    disrupted: tuple[FlowProcess, Settings], reference: tuple[FlowProcess, Settings], what: str
) -> tuple[dict[Any, set[bytes]], dict[Any, set[bytes]]]:
    """The intents (content by client order id) of a disrupted bots flow and its reference, once both
    took every input and their counts stopped moving; then both flows are stopped."""

    def intents(on: Settings) -> dict[Any, set[bytes]]:
        return _contents(on, ["order.intent"], lambda i: i.client_order_id)

    counts: list[tuple[int, int]] = []

    def settled() -> bool:
        counts.append((len(intents(disrupted[1])), len(intents(reference[1]))))
        return len(counts) > 4 and len(set(counts[-4:])) == 1 and counts[-1][1] > 0

    _wait(what, settled, [disrupted[0], reference[0]], 120)
    got, expected = intents(disrupted[1]), intents(reference[1])
    disrupted[0].kill(signal.SIGTERM)
    reference[0].kill(signal.SIGTERM)
    return got, expected


def _intents_result(
    name: str, inputs: int, got: dict[Any, set[bytes]], expected: dict[Any, set[bytes]], start: float
) -> ScenarioResult:
    """The disrupted flow's intents against the reference's: each id once, with the reference's content."""
    told_twice = sum(len(v) - 1 for v in got.values())
    differ = sum(1 for k, v in got.items() if k in expected and v != expected[k])
    extra = len(set(got) - set(expected))
    return ScenarioResult(
        name, inputs, len(got), len(set(expected) - set(got)), told_twice + differ + extra,
        round(time.monotonic() - start, 1),
        f"reference {len(expected)} intents; {told_twice} ids told two ways, {differ} unlike the "
        f"reference, {extra} not in it",
    )  # fmt: skip


def bots_first_snapshot_scenario(settings: Settings, steps: int = 200) -> ScenarioResult:
    """A bots flow killed before its FIRST recovery snapshot, against an undisturbed reference fed the
    same stream: the restart has no resume state and reads its topics from the start again, so only
    the order log can make it take them as the first run did. The race between its topics is made
    likely: md.markets is stamped 30 s ahead (a producer whose clock runs ahead), so a backlog fetched
    in one batch merges by produce time (kafka_source.produced_order) every top before its market,
    and a top of an unknown market is ignored; read live, the markets came before any top. The tops
    stay on one partition: across partitions even two live readers may interleave them differently
    (Bot 8, one instance across markets, then decides differently). The stream pauses while the flow
    is down, so the restart replays only what the first run handed on."""
    from pets.flows.trading_io import read_topics

    start = time.monotonic()
    epoch_ms = 15_000  # the kill lands well before the first epoch close
    with tempfile.TemporaryDirectory(prefix="pets-faults-bots0-") as run_dir:
        isolated = _isolated(settings, Path(run_dir) / "disrupted", database=False)
        reference = _isolated(settings, Path(run_dir) / "reference", database=False)
        flow = FlowProcess("bots", isolated, Path(run_dir) / "bots.log", epoch_ms=epoch_ms)
        calm = FlowProcess("bots", reference, Path(run_dir) / "bots-reference.log", epoch_ms=epoch_ms)
        inputs = list(_quote_inputs(time.time_ns() // MS - 3_600_000, steps))
        markets = [m for m in inputs if m[0] == "md.markets"]
        tops = inputs[len(markets) :]
        before, after = tops[: len(tops) // 4], tops[len(tops) // 4 :]
        ahead = {"md.markets": 30_000}
        try:
            flow.start()
            calm.start()
            _wait("the bots flows to start", lambda: _started(flow) and _started(calm), [flow, calm], 60)
            with _Feed(isolated, iter(markets), rate=1000, mirror=reference, ahead_ms=ahead):
                pass
            # each flow's order log tells what it handed on: the markets, read live, before any top
            both = (isolated, reference)
            _wait("the markets read", lambda: all(_logged(b, markets) for b in both), [flow, calm], 60)
            with _Feed(isolated, iter(before), rate=50, mirror=reference, ahead_ms=ahead):
                pass
            _wait("every top handed on", lambda: _logged(isolated, before), [flow], 60)
            published = len(list(read_topics(isolated, ["order.intent"])))
            flow.kill()
            snapshotted = _snapshots(isolated.recovery_dir / "bots")
            flow.start()

            # the restart has published its replay's intents again (the fix: the same ones; before it,
            # fewer), so the rest of the stream comes live, as to the reference
            def replayed() -> bool:
                return len(list(read_topics(isolated, ["order.intent"]))) >= 2 * published

            _wait("the restart to replay", replayed, [flow], 30)
            with _Feed(isolated, iter(after), rate=50, mirror=reference, ahead_ms=ahead):
                pass

            got, expected = _settled_intents((flow, isolated), (calm, reference), "both bots flows to settle")
        finally:
            flow.kill()
            calm.kill()
            _drop(isolated, None)
            _drop(reference, None)
    if snapshotted:
        raise RuntimeError(f"the kill came after a recovery snapshot ({snapshotted} stored)")
    return _intents_result("kill -9 before snapshot 1 bots", len(inputs), got, expected, start)


def _logged(settings: Settings, messages: list[tuple[str, str, bytes]]) -> bool:
    """Whether the bots flow's order log lists as many messages of each topic as `messages` holds."""
    from collections import Counter

    from pets.flows.trading_io import order_log
    from pets.schemas.topics import load_topic_registry

    registry = load_topic_registry(settings.config_dir)
    wanted = Counter(registry.get(topic).full_name(settings.topic_prefix) for topic, _, _ in messages)
    path = order_log(settings, "bots")
    lines = path.read_text().splitlines() if path.is_file() else []
    have = Counter(line.split("\t", 1)[0] for line in lines)
    return all(have[topic] >= n for topic, n in wanted.items())


def _snapshots(store: Path) -> int:
    """The snapshots a flow's recovery store holds (its SQLite partitions)."""
    import sqlite3

    total = 0
    for part in store.glob("part-*.sqlite3"):
        with contextlib.closing(sqlite3.connect(part)) as db:
            total += db.execute("SELECT count(*) FROM snaps").fetchone()[0]
    return total


def run_all(settings: Settings, progress: Callable[[str], None]) -> list[ScenarioResult]:
    """Every scenario on the given (private) services, in turn."""
    plan: list[tuple[Scenario, Disrupt, str]] = [
        (risk_scenario, kill_9_at_several_points, "kill -9"),
        (bots_scenario, kill_9_at_several_points, "kill -9"),
        (market_state_scenario, kill_9_at_several_points, "kill -9"),
        (risk_scenario, services_stopped_and_restarted, "kafka+postgres restart"),
        (market_state_scenario, services_stopped_and_restarted, "kafka+postgres restart"),
    ]
    results = []
    for scenario, disrupt, label in plan:
        progress(f"{label}: {scenario.__name__.removesuffix('_scenario')}")
        results.append(scenario(settings, disrupt, label))
    progress("kill -9 before the first snapshot: bots")
    results.append(bots_first_snapshot_scenario(settings))
    return results
