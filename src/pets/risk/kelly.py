"""Kelly sizing for intents that carry the bot's win probability.

For a binary token bought at `price` that pays 1 with probability p, the growth-optimal stake is
f* = (p - price) / (1 - price) of the bankroll. A bot stakes `fraction` x f*, where fraction is its
configured Kelly fraction (risk.kelly_fraction, else kelly.default_fraction = half Kelly), halved after
each consecutive losing position and never below kelly.min_fraction (the quarter-Kelly floor). The
result caps the order: Kelly may reduce a size, never increase it.
"""

from __future__ import annotations

from decimal import Decimal

from pets.pipelines.venue_precision import round_size
from pets.risk.denial import Denial


def kelly_optimal(probability: Decimal, price: Decimal) -> Decimal:
    """f*: the bankroll share that maximises log growth (<= 0 means no edge at this price)."""
    return (probability - price) / (1 - price)


def kelly_fraction(base: Decimal, floor: Decimal, consecutive_losses: int) -> Decimal:
    """The Kelly multiplier in use: `base` halved per consecutive loss, never below `floor`."""
    return max(floor, base / (2**consecutive_losses))


def kelly_size(
    size: Decimal, price: Decimal, probability: Decimal, bankroll: Decimal, fraction: Decimal
) -> Decimal | Denial:
    """`size` capped at fraction x f* x bankroll / price shares; a denial when there is no edge."""
    if not Decimal(0) < price < Decimal(1):
        return Denial("kelly", f"price {price} outside (0, 1)")
    optimal = kelly_optimal(probability, price)
    if optimal <= 0:
        return Denial("kelly", f"no edge: probability {probability} <= price {price}")
    cap = round_size(fraction * optimal * bankroll / price)
    if cap <= 0:
        return Denial("kelly", f"Kelly stake {fraction * optimal * bankroll:.4f} buys no share at {price}")
    return min(size, cap)
