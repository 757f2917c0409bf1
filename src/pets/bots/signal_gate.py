"""SignalGate: what stands between the signal topics and a bot's `on_signal` (pure, picklable).

    gate.on_market(info); gate.on_book(tob) -> Passed; gate.offer(signal) -> Passed

A signal passes when it is new (an id already seen within `dedup_window_s` is a duplicate), not
expired (`expires_ns` after the gate's clock) and its market has a fresh book (a top of book, not
marked stale, of the signal's asset, or of the market's first token when it names none, received
after the market's MarketInfo, as the bots see books).
Without one it waits up to `book_wait_ms`, then is dropped with the reason. Every drop is counted by
kind (`counts`) and returned with its reason for the dead-letter topic. The clock is the time of the
events themselves (books' venue ms, signals' creation ns), never the wall clock, so a replay drops
exactly what the live run dropped. The same class runs in the Bytewax bots flow (one per bot, in
its route step) and in the embedded loop.
"""

from __future__ import annotations

from mypy_extensions import mypyc_attr

from pets.risk.duplicates import RecentIds
from pets.schemas.codec import encode
from pets.schemas.config import SignalsConfig
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.signals import Signal

NS_PER_MS = 1_000_000
Dropped = tuple[Signal, str]  # the signal and why it was dropped
Passed = tuple[list[Signal], list[Dropped]]
COUNTED = ("passed", "waited", "expired", "duplicate", "stale_book")


@mypyc_attr(allow_interpreted_subclasses=True)  # snapshotted by the bots flow (pets.native)
class SignalGate:
    def __init__(self, config: SignalsConfig) -> None:
        self.book_wait_ms = config.book_wait_ms
        self.seen = RecentIds(config.dedup_window_s * 1_000 * NS_PER_MS)
        self.clock_ms = 0
        self.first_token: dict[str, str] = {}  # condition id -> the token a signal without asset is about
        # token -> its latest book is usable (seen and not stale); tokens of known markets only, as a
        # bot ignores the books of markets it has not been told about
        self.fresh: dict[str, bool] = {}
        self.waiting: dict[str, list[tuple[int, Signal]]] = {}  # market -> (deadline ms, signal)
        self.counts: dict[str, int] = dict.fromkeys(COUNTED, 0)

    def on_market(self, info: MarketInfo) -> None:
        if info.token_ids:
            self.first_token[info.condition_id] = info.token_ids[0]
        for token in info.token_ids:
            self.fresh.setdefault(token, False)

    def on_book(self, tob: TopOfBook) -> Passed:
        """A new top of book: its token's freshness; waiting signals it frees or that timed out."""
        if tob.asset_id in self.fresh:
            self.fresh[tob.asset_id] = not tob.stale
        if tob.ts_ms > self.clock_ms:
            self.clock_ms = tob.ts_ms
        return self._release() if self.waiting else ([], [])

    def catch_up(self, tops: dict[str, TopOfBook], newest_ms: int) -> None:
        """What `on_book` would have made of tops kept back while no signal waited (the latest per
        token, and the newest time): with nothing waiting, freshness and the clock are all it keeps."""
        fresh = self.fresh
        for asset_id, tob in tops.items():
            if asset_id in fresh:
                fresh[asset_id] = not tob.stale
        if newest_ms > self.clock_ms:
            self.clock_ms = newest_ms

    def offer(self, signal: Signal) -> Passed:
        """A signal from a topic: passed now, held for a book, or dropped."""
        created_ms = signal.ts_ns // NS_PER_MS
        if created_ms > self.clock_ms:
            self.clock_ms = created_ms
        if signal.signal_id in self.seen:
            return [], [self._drop(signal, "duplicate", f"duplicate signal id {signal.signal_id}")]
        self.seen.add(signal.signal_id, self.clock_ms * NS_PER_MS)
        expired = self._expired(signal)
        if expired is not None:
            return [], [expired]
        ready, dropped = self._release() if self.waiting else ([], [])
        if self._book_ready(signal):
            self.counts["passed"] += 1
            ready.append(signal)
        else:
            self.counts["waited"] += 1
            self.waiting.setdefault(signal.market, []).append((self.clock_ms + self.book_wait_ms, signal))
        return ready, dropped

    # ------------------------------------------------------------------ internals

    def _book_ready(self, signal: Signal) -> bool:
        token = signal.asset_id or self.first_token.get(signal.market)
        return token is not None and self.fresh.get(token, False)

    def _expired(self, signal: Signal) -> Dropped | None:
        if signal.expires_ns is not None and signal.expires_ns <= self.clock_ms * NS_PER_MS:
            reason = f"signal {signal.signal_id} expired ({signal.expires_ns} <= clock {self.clock_ms} ms)"
            return self._drop(signal, "expired", reason)
        return None

    def _release(self) -> Passed:
        ready: list[Signal] = []
        dropped: list[Dropped] = []
        for market in list(self.waiting):
            kept: list[tuple[int, Signal]] = []
            for deadline, signal in self.waiting[market]:
                expired = self._expired(signal)
                if expired is not None:
                    dropped.append(expired)
                elif self._book_ready(signal):
                    self.counts["passed"] += 1
                    ready.append(signal)
                elif self.clock_ms > deadline:
                    reason = f"no fresh book for market {market} within {self.book_wait_ms} ms"
                    dropped.append(self._drop(signal, "stale_book", reason))
                else:
                    kept.append((deadline, signal))
            if kept:
                self.waiting[market] = kept
            else:
                del self.waiting[market]
        return ready, dropped

    def _drop(self, signal: Signal, kind: str, reason: str) -> Dropped:
        self.counts[kind] += 1
        return signal, reason


def dead_letter(dropped: Dropped, source: str) -> DeadLetter:
    """A dropped signal for dlq.signals: the reason and the signal as its topic carried it."""
    signal, reason = dropped
    return DeadLetter.from_bytes(
        source, reason, encode(signal), ts_ns=signal.ts_ns, topic=signal.topic, key=signal.market
    )
