"""The L2 order book of one outcome token, on exact integer prices and sizes.

Prices are integer units of 1e-4 and sizes integer units of 1e-6 (units.py). Each side is a dict
price -> size plus the sorted list of its prices, so the best level, a removal and the top N
levels are cheap; Decimal appears only when a caller walks the book (`bids()`, `asks()`,
`best_bid()`, `depth_at()`), which is what the paper exchange does.

The tick size is the one the venue or the market universe stated (a `tick_size_change`, a
snapshot's `tick_size`, MarketInfo), 0.01 until one is. One rule judges every book price, in every
path (the market_state flow, the executor and `pets run` all hold these books): a price on the
book's grid is accepted; a price off it that lies in the venue's tail range (below 0.04 or above
0.96) on the 0.001 grid means the venue moved the market to its tail tick (it does, announcing it
with `tick_size_change`, a frame recordings may lack), so it is accepted and the book's tick becomes
0.001 until the next snapshot without such a price or the next stated tick; any other price off
the grid rejects the frame with the reason (dead-lettered by the caller).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Final, NamedTuple

from mypy_extensions import mypyc_attr

from pets.schemas.market_data import Side
from pets.venue.units import (
    DEFAULT_TICK,
    PRICE_SCALE,
    price_decimal,
    size_decimal,
)

VENUE_TICKS: Final = (1000, 100, 50, 25, 10, 1)  # 0.1, 0.01, 0.005, 0.0025, 0.001, 0.0001 in units
TAIL_TICK: Final = 10  # 0.001: the tick the venue moves a market to near the extremes
TAIL_LOW: Final = 400  # below 0.04 ...
TAIL_HIGH: Final = 9600  # ... or above 0.96


def tick_for(prices: Sequence[int], tick: int) -> int | str:
    """The tick rule for the prices of one frame on a book of `tick`: the tick they are valid under
    (`tick`, or the tail tick that one of them implies), or the reason they are not (units of 1e-4)."""
    off = [price for price in prices if price % tick]
    if not off:
        return tick
    if tick > TAIL_TICK and any(p % TAIL_TICK == 0 and not TAIL_LOW <= p <= TAIL_HIGH for p in off):
        bad = [price for price in off if price % TAIL_TICK]
        if not bad:
            return TAIL_TICK
        off = bad
    return f"price {price_decimal(off[0])} is off the tick grid {price_decimal(tick)}"


class BookLevel(NamedTuple):
    price: Decimal
    size: Decimal


@mypyc_attr(allow_interpreted_subclasses=True)
class OrderBook:
    """One asset's book. Stale until its first snapshot and after a continuity loss, until a snapshot."""

    __slots__ = (
        "ask_prices",
        "ask_sizes",
        "asset_id",
        "bid_prices",
        "bid_sizes",
        "market",
        "stale",
        "stated_tick",
        "tick",
        "ts_ms",
    )

    def __init__(self, asset_id: str, market: str, *, tick: int | None = None) -> None:
        self.asset_id = asset_id
        self.market = market
        self.ts_ms = 0
        self.stated_tick = tick or DEFAULT_TICK  # stated by the venue or the universe, else 0.01
        self.tick = self.stated_tick  # the stated tick, or the tail tick that prices implied
        self.stale = True
        self.bid_prices: list[int] = []  # ascending: the best bid is last
        self.bid_sizes: dict[int, int] = {}
        self.ask_prices: list[int] = []  # ascending: the best ask is first
        self.ask_sizes: dict[int, int] = {}

    # -- updates (integer units; return a reason instead of raising) --------------------------

    def apply_snapshot(
        self, bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]], ts_ms: int, tick: int | None
    ) -> str | None:
        """Replace the whole book (levels in any order; size 0 levels are dropped); clears `stale`."""
        if tick is not None:
            self.set_tick(tick)
        bid_sizes = {price: size for price, size in bids if size}
        ask_sizes = {price: size for price, size in asks if size}
        # judged afresh against the stated tick: a tail tick lasts while tail prices are in the book
        tick = self.stated_tick
        if any(price % tick for price in bid_sizes) or any(price % tick for price in ask_sizes):
            checked = tick_for([*bid_sizes, *ask_sizes], tick)
            if isinstance(checked, str):
                return f"{checked} of asset {self.asset_id}"
            tick = checked
        self.tick = tick
        self.bid_sizes, self.bid_prices = bid_sizes, sorted(bid_sizes)
        self.ask_sizes, self.ask_prices = ask_sizes, sorted(ask_sizes)
        self.ts_ms = ts_ms
        self.stale = False
        return None

    def apply_changes(self, changes: Sequence[tuple[bool, int, int]], ts_ms: int) -> str | None:
        """Set levels to new total sizes ((is_bid, price, size); size 0 removes the level)."""
        tick = self.tick
        for _, price, _ in changes:
            if price % tick:
                checked = tick_for([p for _, p, _ in changes], tick)
                if isinstance(checked, str):
                    return f"{checked} of asset {self.asset_id}"
                self.tick = checked
                break
        for is_bid, price, size in changes:
            if is_bid:
                prices, sizes = self.bid_prices, self.bid_sizes
            else:
                prices, sizes = self.ask_prices, self.ask_sizes
            if size:
                if price not in sizes:
                    insort(prices, price)
                sizes[price] = size
            elif sizes.pop(price, None) is not None:
                del prices[bisect_left(prices, price)]
        self.ts_ms = ts_ms
        return None

    def set_tick(self, tick: int) -> None:
        """A tick size stated by the venue or the market universe."""
        self.tick = self.stated_tick = tick

    def mark_stale(self) -> None:
        self.stale = True

    # -- integer views (hot path) ---------------------------------------------------------------

    def best_bid_units(self) -> tuple[int, int] | None:
        if not self.bid_prices:
            return None
        price = self.bid_prices[-1]
        return price, self.bid_sizes[price]

    def best_ask_units(self) -> tuple[int, int] | None:
        if not self.ask_prices:
            return None
        price = self.ask_prices[0]
        return price, self.ask_sizes[price]

    def bid_depth_units(self, levels: int) -> int:
        """Total size of the best `levels` bid levels."""
        sizes = self.bid_sizes
        return sum(sizes[p] for p in self.bid_prices[-levels:])

    def ask_depth_units(self, levels: int) -> int:
        sizes = self.ask_sizes
        return sum(sizes[p] for p in self.ask_prices[:levels])

    @property
    def crossed(self) -> bool:
        return bool(self.bid_prices and self.ask_prices and self.bid_prices[-1] >= self.ask_prices[0])

    # -- Decimal views (paper exchange, reports) -------------------------------------------------

    @property
    def tick_size(self) -> Decimal:
        return price_decimal(self.tick)

    def bids(self) -> Iterator[BookLevel]:
        """Bid levels best (highest) first."""
        sizes = self.bid_sizes
        for price in reversed(self.bid_prices):
            yield BookLevel(price_decimal(price), size_decimal(sizes[price]))

    def asks(self) -> Iterator[BookLevel]:
        """Ask levels best (lowest) first."""
        sizes = self.ask_sizes
        for price in self.ask_prices:
            yield BookLevel(price_decimal(price), size_decimal(sizes[price]))

    def best_bid(self) -> BookLevel | None:
        best = self.best_bid_units()
        return None if best is None else BookLevel(price_decimal(best[0]), size_decimal(best[1]))

    def best_ask(self) -> BookLevel | None:
        best = self.best_ask_units()
        return None if best is None else BookLevel(price_decimal(best[0]), size_decimal(best[1]))

    def depth_at(self, side: Side, price: Decimal) -> Decimal:
        """Resting size at `price` on the bid ("BUY") or ask ("SELL") side; 0 when there is none."""
        units = price * PRICE_SCALE
        if units != units.to_integral_value():
            return Decimal(0)
        sizes = self.bid_sizes if side == "BUY" else self.ask_sizes
        size = sizes.get(int(units), 0)
        return size_decimal(size) if size else Decimal(0)

    def __repr__(self) -> str:
        bid, ask = self.best_bid(), self.best_ask()
        return (
            f"OrderBook({self.asset_id[:10]}..., bid={bid and bid.price}x{bid and bid.size}, "
            f"ask={ask and ask.price}x{ask and ask.size}, tick={self.tick_size}, stale={self.stale})"
        )
