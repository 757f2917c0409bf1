"""Deterministic simulated market-channel frames (seeded), for a fresh clone without recordings.

Binary markets whose YES book drifts around a random-walk fair price on the 0.01 grid; the NO book
mirrors it (a YES bid at p is a NO ask at 1 - p) and every update arrives, like the venue's, as
one frame per token with the same timestamp (the per-asset `changes` schema of the recordings)
or as one frame with both tokens (`price_changes`, the current schema). Book snapshots open
each market and repeat every `snapshot_every` updates; sides are listed best-LAST.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Literal

import msgspec

from pets.pipelines.market_data.units import PRICE_SCALE
from pets.schemas.market_data import MarketInfo

TICK = 100  # 0.01 in price units of 1e-4
ONE = PRICE_SCALE  # price 1.00 in units
LEVELS = 10
Schema = Literal["changes", "price_changes"]

_encode = msgspec.json.Encoder().encode


def _price(units: int) -> str:
    return f"{units // ONE}.{units % ONE:04d}".rstrip("0").rstrip(".") if units % ONE else str(units // ONE)


def _size(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class SimulatedMarket:
    """One binary market: the YES book (price units -> size in cents); NO is derived by mirroring."""

    def __init__(self, rng: random.Random, index: int) -> None:
        self.rng = rng
        self.condition_id = f"0x{rng.getrandbits(256):064x}"
        self.market_id = str(500_000 + index)
        self.yes = str(rng.getrandbits(250))
        self.no = str(rng.getrandbits(250))
        self.fair = rng.randrange(20, 81) * TICK
        self.bids = {self.fair - k * TICK: self._size() for k in range(1, LEVELS + 1)}
        self.asks = {self.fair + k * TICK: self._size() for k in range(1, LEVELS + 1)}

    def info(self) -> MarketInfo:
        return MarketInfo(
            condition_id=self.condition_id,
            market_id=self.market_id,
            question=f"Simulated market {self.market_id}?",
            slug=f"sim-{self.market_id}",
            category="simulated",
            token_ids=(self.yes, self.no),
            outcomes=("Yes", "No"),
            neg_risk=False,
            tick_size=Decimal("0.01"),
            min_order_size=Decimal(5),
            active=True,
            closed=False,
            accepting_orders=True,
        )

    def _size(self) -> int:
        return self.rng.randrange(500, 500_000)

    @staticmethod
    def levels(side: dict[int, int], *, mirrored: bool = False) -> dict[Decimal, Decimal]:
        """A side of the YES book as {price: size} Decimals (of the NO book when `mirrored`)."""
        return {Decimal(ONE - p if mirrored else p) / ONE: Decimal(cents) / 100 for p, cents in side.items()}

    def step(self) -> list[tuple[bool, int, int]]:
        """One update of the YES book: (is_bid, price units, size cents; 0 removes the level)."""
        rng = self.rng
        changes: list[tuple[bool, int, int]] = []
        if rng.random() < 0.1:
            self.fair = min(max(self.fair + rng.choice((-TICK, TICK)), 5 * TICK), ONE - 5 * TICK)
            for price in [p for p in self.bids if p >= self.fair]:
                del self.bids[price]
                changes.append((True, price, 0))
            for price in [p for p in self.asks if p <= self.fair]:
                del self.asks[price]
                changes.append((False, price, 0))
        is_bid = rng.random() < 0.5
        price = (
            self.fair - rng.randrange(1, LEVELS + 1) * TICK
            if is_bid
            else self.fair + rng.randrange(1, LEVELS + 1) * TICK
        )
        if 0 < price < ONE:
            side = self.bids if is_bid else self.asks
            size = 0 if rng.random() < 0.25 and price in side else self._size()
            if size:
                side[price] = size
            else:
                side.pop(price, None)
            changes.append((is_bid, price, size))
        return changes

    def snapshot_frames(self, ts: int) -> list[dict[str, object]]:
        yes_bids = sorted(self.bids.items())
        yes_asks = sorted(self.asks.items(), reverse=True)
        no_bids = sorted((ONE - p, s) for p, s in self.asks.items())  # NO bid at 1 - (YES ask)
        no_asks = sorted(((ONE - p, s) for p, s in self.bids.items()), reverse=True)
        return [self._book(self.yes, yes_bids, yes_asks, ts), self._book(self.no, no_bids, no_asks, ts)]

    def _book(
        self, asset_id: str, bids: list[tuple[int, int]], asks: list[tuple[int, int]], ts: int
    ) -> dict[str, object]:
        return {
            "event_type": "book",
            "asset_id": asset_id,
            "market": self.condition_id,
            "timestamp": str(ts),
            "hash": f"{self.rng.getrandbits(160):040x}",
            "bids": [{"price": _price(p), "size": _size(s)} for p, s in bids],
            "asks": [{"price": _price(p), "size": _size(s)} for p, s in asks],
        }

    def change_frames(
        self, changes: list[tuple[bool, int, int]], ts: int, schema: Schema
    ) -> list[dict[str, object]]:
        yes = [{"price": _price(p), "side": "BUY" if b else "SELL", "size": _size(s)} for b, p, s in changes]
        no = [
            {"price": _price(ONE - p), "side": "SELL" if b else "BUY", "size": _size(s)}
            for b, p, s in changes
        ]
        if schema == "changes":
            return [
                {
                    "event_type": "price_change",
                    "asset_id": asset,
                    "market": self.condition_id,
                    "timestamp": str(ts),
                    "hash": f"{self.rng.getrandbits(160):040x}",
                    "changes": levels,
                }
                for asset, levels in ((self.yes, yes), (self.no, no))
            ]
        best_bid, best_ask = max(self.bids, default=0), min(self.asks, default=ONE)  # empty: "0" / "1"
        quotes = {self.yes: (best_bid, best_ask), self.no: (ONE - best_ask, ONE - best_bid)}
        entries = [
            {
                **level,
                "asset_id": asset,
                "hash": f"{self.rng.getrandbits(160):040x}",
                "best_bid": _price(quotes[asset][0]),
                "best_ask": _price(quotes[asset][1]),
            }
            for asset, levels in ((self.yes, yes), (self.no, no))
            for level in levels
        ]
        return [
            {
                "event_type": "price_change",
                "market": self.condition_id,
                "timestamp": str(ts),
                "price_changes": entries,
            }
        ]


def simulated_markets(markets: int = 4, seed: int = 7) -> list[SimulatedMarket]:
    rng = random.Random(seed)
    return [SimulatedMarket(rng, i) for i in range(markets)]


class SyntheticFeed:
    """A seeded feed of simulated markets; `markets` always hold the books the frames so far describe."""

    def __init__(
        self,
        *,
        markets: int = 4,
        seed: int = 7,
        snapshot_every: int = 500,
        schema: Schema = "changes",
        start_ms: int = 1_750_000_000_000,
    ) -> None:
        self.markets = simulated_markets(markets, seed)
        self._rng = random.Random(seed + 1)
        self._snapshot_every = snapshot_every
        self._schema = schema
        self._ts = start_ms

    def infos(self) -> list[MarketInfo]:
        return [sim.info() for sim in self.markets]

    def frames(self, count: int) -> Iterator[bytes]:
        """At least `count` frames: opening snapshots, then whole updates (both tokens' frames)."""
        emitted = 0
        pending: list[dict[str, object]] = [f for sim in self.markets for f in sim.snapshot_frames(self._ts)]
        updates = 0
        while True:
            for frame in pending:
                yield _encode(frame)
                emitted += 1
            if emitted >= count:
                return
            self._ts += self._rng.randrange(1, 400)
            sim = self.markets[self._rng.randrange(len(self.markets))]
            updates += 1
            if updates % self._snapshot_every == 0:
                pending = sim.snapshot_frames(self._ts)
            else:
                changes = sim.step()
                pending = sim.change_frames(changes, self._ts, self._schema) if changes else []


def synthetic_frames(
    *,
    frames: int = 10_000,
    markets: int = 4,
    seed: int = 7,
    snapshot_every: int = 500,
    schema: Schema = "changes",
) -> Iterator[bytes]:
    """At least `frames` venue-shaped frames (JSON bytes), the same for the same arguments."""
    feed = SyntheticFeed(markets=markets, seed=seed, snapshot_every=snapshot_every, schema=schema)
    return feed.frames(frames)
