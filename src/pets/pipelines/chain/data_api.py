"""Followed wallets' fills from Polymarket's Data API, merged with the chain's.

- `/trades?user=W&takerOnly=false` (the default `takerOnly=true` leaves out a whale's maker fills) and
  `/activity?user=W` (its TRADE rows; splits, merges and redemptions are not fills), polled per wallet
  within the Data API's rate limit (`RateLimit`: 200 requests per 10 s for /trades; 429s are retried
  by the HTTP client honouring Retry-After).
- A row becomes a WalletFill with `exchange="data_api"` (the API names no exchange, block or log
  index: `log_index` -1, `block_number` 0) and its fee unknown (0).
- `FillMerger`: chain and Data API see the same fills; a fill is published by whichever source sees
  it first, keyed by (transaction hash, wallet, token, side), and each source's latency (block or
  trade time -> seen) is recorded for every fill it saw, so a deployment can pick the faster source.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pets.pipelines.polymarket.http import JsonHttpClient
from pets.schemas.control import DeadLetter
from pets.schemas.signals import WalletFill

MERGE_MEMORY = 200_000  # fill keys remembered by the merger


class RateLimit:
    """At most `requests` calls per `window_s` (sliding window): `wait()` before each call."""

    def __init__(
        self,
        requests: int,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.requests = requests
        self.window_s = window_s
        self.clock = clock
        self.sleep = sleep
        self.sent: list[float] = []

    def wait(self) -> None:
        now = self.clock()
        self.sent = [t for t in self.sent if now - t < self.window_s]
        if len(self.sent) >= self.requests:
            pause = self.window_s - (now - self.sent[0])
            self.sleep(pause)
            now += pause
            self.sent = self.sent[1:]
        self.sent.append(now)


@dataclass
class SourceLatency:
    fills: int = 0
    first: int = 0  # fills this source saw before the other
    total_ms: int = 0
    max_ms: int = 0

    @property
    def mean_ms(self) -> float | None:
        return self.total_ms / self.fills if self.fills else None


@dataclass
class FillMerger:
    """Which source published a fill first; every source's latency (fill time -> seen)."""

    wall_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)
    seen: dict[tuple[str, str, str, str], list[str]] = field(default_factory=dict)  # key -> sources
    latency: dict[str, SourceLatency] = field(default_factory=dict)

    def offer(self, fill: WalletFill, source: str) -> bool:
        """True when `fill` is new (publish it), False when a source saw it already."""
        key = (fill.tx_hash.lower(), fill.wallet.lower(), fill.asset_id, fill.side)
        stats = self.latency.setdefault(source, SourceLatency())
        if fill.retracted:
            self.seen.pop(key, None)
            return True
        sources = self.seen.get(key)
        if sources is None:
            self.seen[key] = [source]
            if len(self.seen) > MERGE_MEMORY:
                del self.seen[next(iter(self.seen))]
            stats.first += 1
            self._record(stats, fill)
            return True
        if source not in sources:  # the slower source: its latency counts too
            sources.append(source)
            self._record(stats, fill)
        return False

    def _record(self, stats: SourceLatency, fill: WalletFill) -> None:
        ms = self.wall_ms() - fill.ts_ms
        stats.fills += 1
        stats.total_ms += ms
        stats.max_ms = max(stats.max_ms, ms)


class MergingSink:
    """A FillSink that publishes through `inner` only the fills `merger` has not seen from elsewhere."""

    def __init__(self, inner: Any, merger: FillMerger, source: str) -> None:
        self.inner = inner
        self.merger = merger
        self.source = source

    def send(self, fill: WalletFill) -> bool:
        """Publish `fill` unless another source did; True when published."""
        if not self.merger.offer(fill, self.source):
            return False
        self.inner.send(fill)
        return True

    def dead_letter(self, letter: DeadLetter) -> None:
        self.inner.dead_letter(letter)

    def flush(self) -> None:
        self.inner.flush()

    def published_since(self, ts_ms: int) -> dict[str, int]:
        return self.inner.published_since(ts_ms)  # type: ignore[no-any-return]


def fill_of(row: Mapping[str, Any], wallet: str) -> WalletFill | None:
    """A Data-API /trades or /activity TRADE row of `wallet` as its fill; None for anything else."""
    if row.get("type", "TRADE") != "TRADE" or row.get("side") not in ("BUY", "SELL"):
        return None
    shares, price = Decimal(str(row["size"])), Decimal(str(row["price"]))
    usdc = row.get("usdcSize")
    return WalletFill(
        tx_hash=str(row["transactionHash"]).lower(), log_index=-1, block_number=0, exchange="data_api",
        wallet=wallet.lower(), counterparty=None, asset_id=str(row["asset"]), side=row["side"],
        price=price, shares=shares, usdc=Decimal(str(usdc)) if usdc is not None else shares * price,
        fee=Decimal(0), ts_ms=int(row["timestamp"]) * 1000,
    )  # fmt: skip


class DataApiFollower:
    def __init__(
        self,
        client: JsonHttpClient,
        sink: MergingSink,
        wallets: Callable[[], Iterable[str]],
        limit: RateLimit | None = None,
        page: int = 100,
    ) -> None:
        self.client = client
        self.sink = sink
        self.wallets = wallets
        self.limit = limit or RateLimit(200)
        self.page = page
        self.published = 0

    def _get(self, path: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        self.limit.wait()
        rows = self.client.get(path, params)
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    def poll(self) -> int:
        """One pass over the followed wallets: the number of fills published (new to both sources)."""
        before = self.published
        for wallet in self.wallets():
            rows = self._get("/trades", {"user": wallet, "takerOnly": False, "limit": self.page})
            rows += self._get("/activity", {"user": wallet, "limit": self.page})
            for row in sorted(rows, key=lambda r: int(r.get("timestamp") or 0)):
                fill = fill_of(row, wallet)
                if fill is not None and self.sink.send(fill):
                    self.published += 1
        self.sink.flush()
        return self.published - before
