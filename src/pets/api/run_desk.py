"""The desk over an in-process run (`pets run --api-port P [--speed X]`).

The loop keeps its thread and its hot path: `RunDesk.feed` wraps the input it iterates, and between
two inputs (so never while the loop is inside one) it paces the run, applies the operator commands the
API queued, and every PUBLISH_S of wall time publishes a fresh immutable `DeskState`. The API's
threads only read the latest published state (one reference) and put commands on a queue: they never
touch the loop's objects, and the loop never waits for them. After the run the main thread keeps
serving: `serve_final` applies commands and republishes until interrupted.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from msgspec.structs import replace

from pets.api.state import (
    RECENT,
    DenialRow,
    DeskState,
    Fill,
    FlowHealth,
    MarketLabel,
    OpenOrder,
    events_between,
    utc_midnight_ns,
)
from pets.runtime.journal import Journal
from pets.runtime.loop import NS_PER_MS, TradingLoop
from pets.schemas.control import ControlCommand

PUBLISH_S = 0.25
T = TypeVar("T")


class RunDesk:
    source = "run"

    def __init__(self, loop: TradingLoop, journal: Journal, speed: float | None = None) -> None:
        self.loop = loop
        self.journal = journal
        self.config = loop.config
        self.speed = speed
        self.finished = False
        self.commands: queue.SimpleQueue[ControlCommand] = queue.SimpleQueue()
        self.events: deque[dict[str, Any]] = deque(maxlen=2_000)
        self.sequence = 0
        self._events_lock = threading.Lock()
        # what the publisher has folded in from the journal's append-only lists so far
        self._seen = {"reports": 0, "denials": 0, "approved": 0, "history": 0}
        self._fills: deque[Fill] = deque(maxlen=RECENT)
        self._denials: deque[DenialRow] = deque(maxlen=RECENT)
        self._denial_counts: Counter[tuple[str, str]] = Counter()
        self._fill_days: Counter[tuple[str, int]] = Counter()  # (bot, UTC day start) -> fills
        self._latency: dict[str, tuple[float, int]] = {}  # bot -> (sum ms, count)
        self._opened: dict[tuple[str, str], int] = {}
        self._published_at = time.monotonic()
        self.state = DeskState(source="run", simulated=True, now_ns=0)
        self.publish()

    # ------------------------------------------------------------------ the API's side

    def current(self) -> DeskState:
        return self.state

    def events_after(self, seq: int) -> list[dict[str, Any]]:
        with self._events_lock:
            return [e for e in self.events if e["seq"] > seq]

    def last_seq(self) -> int:
        return self.sequence

    def control(self, make: Any) -> ControlCommand:
        cmd: ControlCommand = make()
        self.commands.put(cmd)
        return cmd

    # ------------------------------------------------------------------ the loop's side

    def feed(self, inputs: Iterable[T]) -> Iterator[T]:
        """The run's inputs, paced at `speed` x venue time, with commands applied and states published
        between them."""
        loop = self.loop
        started = time.monotonic()
        first_ms = 0
        next_check = 0
        for n, item in enumerate(inputs):
            if n >= next_check:  # the clock is read every few inputs: the hot path stays the loop's
                next_check = n + 16
                now = time.monotonic()
                if self.speed is not None and loop.clock_ms:
                    first_ms = first_ms or loop.clock_ms
                    ahead = (loop.clock_ms - first_ms) / 1000 / self.speed - (now - started)
                    if ahead > 0:
                        self._wait(ahead)
                        now = time.monotonic()
                if not self.commands.empty():
                    self.apply_commands()
                if now - self._published_at >= PUBLISH_S:
                    self.publish()
            yield item

    def _wait(self, seconds: float) -> None:
        """Sleep while paced, still applying commands and publishing (a halt must not wait the pace)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, PUBLISH_S / 2))
            if not self.commands.empty():
                self.apply_commands()
            if time.monotonic() - self._published_at >= PUBLISH_S:
                self.publish()

    def apply_commands(self) -> None:
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                break
            # stamped with the run's clock: the run decides on venue time
            self.loop.control(replace(cmd, ts_ns=self.loop.clock_ms * NS_PER_MS))
        self.publish()

    def serve_final(self, stop: threading.Event) -> None:
        """After the run: keep applying commands and publishing the final state until `stop`."""
        self.finished = True
        self.publish()
        while not stop.wait(PUBLISH_S):
            if not self.commands.empty():
                self.apply_commands()

    def publish(self) -> None:
        """Build the state from the loop and journal (on the loop's thread) and swap it in."""
        loop, journal = self.loop, self.journal
        now_ns = loop.clock_ms * NS_PER_MS
        self._fold(journal, now_ns)
        markets = {
            cid: MarketLabel(
                info.question, info.category, dict(zip(info.token_ids, info.outcomes, strict=False))
            )
            for cid, info in journal.markets.items()
        }
        open_orders = [
            OpenOrder(
                client_order_id=o.intent.client_order_id,
                ts_ns=o.intent.created_ns,
                bot_id=o.intent.bot_id,
                market=o.intent.market,
                asset_id=o.intent.asset_id,
                side=o.intent.side,
                price=o.intent.price,
                size=o.intent.size,
                leaves=o.leaves,
            )
            for o in list(loop.exchange.orders.values())
        ]
        positions = [p for p in loop.portfolio.positions() if p.qty != 0]
        midnight = utc_midnight_ns(now_ns)
        age = 0.0 if not self.finished else None
        state = DeskState(
            source="run",
            simulated=True,  # pets run trades paper only
            now_ns=now_ns,
            snapshots=list(journal.pnl),
            fills=list(self._fills),
            orders=open_orders,
            positions=positions,
            opened_ns=dict(self._opened),
            marks={
                p.asset_id: m for p in positions if (m := loop.portfolio.marks.get(p.asset_id)) is not None
            },
            markets=markets,
            risk=loop.risk.snapshot(),
            denials=list(self._denials),
            denial_counts=[(b, r, n) for (b, r), n in self._denial_counts.items()],
            alerts=journal.alerts[-RECENT:],
            trades_today={b: n for (b, day), n in self._fill_days.items() if day == midnight},
            latency_ms={b: total / n for b, (total, n) in self._latency.items() if n},
            flows=[
                FlowHealth(
                    "run",
                    age,
                    0,
                    "finished: serving the final state"
                    if self.finished
                    else f"{loop.stats.frames} frames in",
                )
            ],
        )
        events = events_between(self.state, state)
        with self._events_lock:
            for event in events:
                self.sequence += 1
                self.events.append({"seq": self.sequence, **event})
        self.state = state
        self._published_at = time.monotonic()

    def _fold(self, journal: Journal, now_ns: int) -> None:
        """Fold the journal entries appended since the last publication into the running tallies."""
        seen = self._seen
        for report in journal.reports[seen["reports"] :]:
            if report.last_qty > 0:
                fill = Fill(
                    report_id=report.report_id,
                    ts_ns=report.ts_ns,
                    bot_id=report.bot_id,
                    client_order_id=report.client_order_id,
                    market=report.market,
                    asset_id=report.asset_id,
                    side=report.side,
                    qty=report.last_qty,
                    price=report.last_px if report.last_px is not None else report.order_price,
                    fee=report.fee,
                    rebate=report.rebate,
                    liquidity=report.liquidity,
                )
                self._fills.append(fill)
                self._fill_days[(report.bot_id, utc_midnight_ns(report.ts_ns))] += 1
        seen["reports"] = len(journal.reports)
        for denied in journal.denials[seen["denials"] :]:
            intent = denied.intent
            self._denials.append(
                DenialRow(intent.client_order_id, denied.denied_ns, intent.bot_id, intent.market, denied.rule,
                          denied.reason)
            )  # fmt: skip
            self._denial_counts[(intent.bot_id, denied.rule)] += 1
        seen["denials"] = len(journal.denials)
        for approved in journal.approved[seen["approved"] :]:
            intent = approved.intent
            if intent.action in ("place", "replace"):
                ms = (approved.approved_ns - intent.source_ts_ms * NS_PER_MS) / 1e6
                total, n = self._latency.get(intent.bot_id, (0.0, 0))
                self._latency[intent.bot_id] = (total + ms, n + 1)
        seen["approved"] = len(journal.approved)
        for position in journal.position_history[seen["history"] :]:
            key = (position.bot_id, position.asset_id)
            if position.qty == 0:
                self._opened.pop(key, None)
            else:
                self._opened.setdefault(key, position.ts_ns)
        seen["history"] = len(journal.position_history)


class RunService:
    """The API served on a thread beside a run: `pets run --api-port P [--speed X]`."""

    def __init__(self, desk: RunDesk, server: Any, thread: threading.Thread, url: str) -> None:
        self.desk = desk
        self.server = server
        self.thread = thread
        self.url = url
        self.stop = threading.Event()

    @classmethod
    def start(
        cls, loop: TradingLoop, journal: Journal, speed: float | None, host: str, port: int, audit_path: Any
    ) -> RunService:
        from pets.api.app import create_app
        from pets.api.control import AuditLog
        from pets.api.server import api_token, serve_in_thread

        desk = RunDesk(loop, journal, speed)
        app = create_app(desk, loop.config, api_token(), AuditLog(path=audit_path))
        server, thread = serve_in_thread(app, host, port)
        return cls(desk, server, thread, f"http://{host}:{port}")

    def serve_until_interrupted(self) -> None:
        """Serve the final state (commands still apply) until Ctrl-C / SIGTERM, then stop the server."""
        import signal

        previous = signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        try:
            self.desk.serve_final(self.stop)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.server.should_exit = True
            self.thread.join(5)
