"""The one place where prices, sizes and order amounts are rounded to what the venue accepts.

Polymarket rejects (or silently drops) orders whose price is off the market's tick grid, whose size
has more than 2 decimals, or whose maker/taker amounts carry more decimals than the tick size allows.
The table below is the CLOB V2 client's rounding config (py-clob-client-v2 `ROUNDING_CONFIG`):
price decimals, size decimals and amount decimals per tick size. Amounts go on the wire in integer
micro-units (pUSD and conditional tokens both have 6 decimals).

Everything here is exact Decimal arithmetic; nothing rounds "to nearest" unless asked to, because the
safe direction depends on the side: a buy rounds its price down and a sell rounds up (never pay more
or sell for less than the strategy wanted), and sizes always round down (never buy more than planned).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Literal

from pets.schemas.config import VenueConfig

Side = Literal["BUY", "SELL"]
Rounding = Literal["down", "up", "nearest"]

SIZE_STEP = Decimal("0.01")  # shares: 2 decimals on every market
MICRO = Decimal("0.000001")  # one micro-unit of pUSD / conditional token (6 decimals)
MICRO_PER_UNIT = 1_000_000
MARKETABLE_MIN_NOTIONAL = Decimal(1)  # the venue's minimum for a marketable (FOK/FAK) order, in pUSD

_MODES = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_EVEN}


@dataclass(frozen=True, slots=True)
class TickPrecision:
    """Decimals the venue accepts for one tick size."""

    tick: Decimal
    price_decimals: int
    size_decimals: int
    amount_decimals: int

    @property
    def amount_quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.amount_decimals)


PRECISIONS: dict[Decimal, TickPrecision] = {
    p.tick: p
    for p in (
        TickPrecision(Decimal("0.1"), 1, 2, 3),
        TickPrecision(Decimal("0.01"), 2, 2, 4),
        TickPrecision(Decimal("0.005"), 3, 2, 5),
        TickPrecision(Decimal("0.0025"), 4, 2, 6),
        TickPrecision(Decimal("0.001"), 3, 2, 5),
        TickPrecision(Decimal("0.0001"), 4, 2, 6),
    )
}
TICK_SIZES: tuple[Decimal, ...] = tuple(PRECISIONS)


def precision(tick: Decimal) -> TickPrecision:
    """The venue's precision for `tick`; ValueError for a tick size the venue does not use."""
    try:
        return PRECISIONS[tick]
    except KeyError:
        known = ", ".join(str(t) for t in TICK_SIZES)
        raise ValueError(f"unknown tick size {tick}; the venue uses {known}") from None


def round_price(price: Decimal, tick: Decimal, rounding: Rounding) -> Decimal:
    """`price` on the tick grid, clamped into the tradable range [tick, 1 - tick] (the clamp may move a
    price against the rounding direction: an order's price goes through `passive_price`)."""
    p = precision(tick)
    steps = (price / tick).to_integral_value(rounding=_MODES[rounding])
    max_steps = (1 / tick).to_integral_value() - 1
    steps = min(max(steps, Decimal(1)), max_steps)
    return (steps * tick).quantize(Decimal(1).scaleb(-p.price_decimals))


def passive_price(side: Side, price: Decimal, tick: Decimal) -> Decimal | None:
    """Round toward the side's safe direction: a BUY never pays more, a SELL never asks less. None when
    no tradable price is that safe (a BUY below one tick, a SELL above 1 - tick): no order, rather than
    one at a worse price than asked. Beyond the other end the price is clamped, which is safe."""
    if (side == "BUY" and price < tick) or (side == "SELL" and price > 1 - tick):
        return None
    return round_price(price, tick, "down" if side == "BUY" else "up")


def round_size(size: Decimal) -> Decimal:
    """Shares rounded DOWN to the venue's 2-decimal grid (never more than planned); >= 0."""
    if size <= 0:
        return Decimal("0.00")
    return size.quantize(SIZE_STEP, rounding=ROUND_FLOOR)


def on_tick_grid(price: Decimal, tick: Decimal) -> bool:
    """True when `price` is a multiple of `tick` strictly inside (0, 1)."""
    return Decimal(0) < price < Decimal(1) and price % tick == 0


def on_size_grid(size: Decimal) -> bool:
    return size > 0 and size % SIZE_STEP == 0


def limit_order_amounts(side: Side, price: Decimal, size: Decimal, tick: Decimal) -> tuple[int, int]:
    """(maker_amount, taker_amount) in micro-units of a limit order, as the V2 client signs them.

    BUY: the maker gives price*size pUSD and takes `size` tokens; SELL the reverse. With the price on
    the grid and the size on 2 decimals the product already fits the tick's amount decimals, so this
    is exact; a price or size off its grid is an error (round first), never silently changed.
    """
    p = precision(tick)
    if not on_tick_grid(price, tick):
        raise ValueError(f"price {price} is not on the {tick} tick grid")
    if not on_size_grid(size):
        raise ValueError(f"size {size} is not a positive multiple of {SIZE_STEP}")
    notional = price * size
    if notional != notional.quantize(p.amount_quantum, rounding=ROUND_FLOOR):
        raise ValueError(f"amount {notional} has more than {p.amount_decimals} decimals (tick {tick})")
    usdc, shares = to_micro(notional), to_micro(size)
    return (usdc, shares) if side == "BUY" else (shares, usdc)


def market_order_amounts(side: Side, amount: Decimal, price: Decimal, tick: Decimal) -> tuple[int, int]:
    """(maker_amount, taker_amount) in micro-units of a marketable order (the V2 client's rule).

    `amount` is pUSD to spend for a BUY and shares to sell for a SELL; `price` is the worst price
    accepted, rounded down onto the grid. The derived leg is truncated to the tick's amount decimals.
    """
    p = precision(tick)
    worst = round_price(price, tick, "down")
    maker = amount.quantize(SIZE_STEP, rounding=ROUND_FLOOR)
    if maker <= 0:
        raise ValueError(f"amount {amount} rounds to zero")
    derived = maker / worst if side == "BUY" else maker * worst
    taker = derived.quantize(p.amount_quantum, rounding=ROUND_FLOOR)
    return to_micro(maker), to_micro(taker)


def to_micro(value: Decimal) -> int:
    """Exact integer micro-units; ValueError when `value` has more than 6 decimals."""
    micro = value * MICRO_PER_UNIT
    if micro != micro.to_integral_value():
        raise ValueError(f"{value} has more than 6 decimals")
    return int(micro)


def fee_rate(venue: VenueConfig, category: str | None, market_rate: Decimal | None = None) -> Decimal:
    """The taker feeRate of a market, the one rule every layer uses: the market's own rate when the
    venue states one (Gamma, MarketInfo.fee_rate), else its category's (pets.yaml venue.fee_rates)."""
    return market_rate if market_rate is not None else venue.fee_rate(category)


def taker_fee(size: Decimal, price: Decimal, fee_rate: Decimal) -> Decimal:
    """The venue's taker fee for `size` shares at `price`: size x feeRate x p x (1 - p), exact."""
    return size * fee_rate * price * (1 - price)
