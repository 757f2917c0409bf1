"""Exact Kelly sizing with fees, for intents that carry the bot's win probability.

A binary token that pays 1 with probability p costs c per share all in: the price plus the taker fee
(feeRate x p x (1 - p), at the market's rate) or the price alone for a resting post-only order. The
growth-optimal stake is f* = (p - c) / (1 - c) of the bankroll (the bot's current equity), no bet when
p <= c. A NO buy is the same with 1 - p and the NO price. A bot stakes `fraction` x f*, where fraction
is its configured Kelly fraction (risk.kelly_fraction, else kelly.default_fraction = half Kelly),
halved after each consecutive losing position and never below kelly.min_fraction (the quarter-Kelly
floor). The result caps the order: Kelly may reduce a size, never increase it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pets.risk.denial import Denial
from pets.venue.precision import round_size
from pets.venue.precision import taker_fee as venue_taker_fee


def kelly_optimal(probability: Decimal, cost: Decimal) -> Decimal:
    """f* = (p - c) / (1 - c): the bankroll share that maximises log growth (<= 0: no edge at c)."""
    return (probability - cost) / (1 - cost)


def kelly_fraction(base: Decimal, floor: Decimal, consecutive_losses: int) -> Decimal:
    """The Kelly multiplier in use: `base` halved per consecutive loss, never below `floor`."""
    return max(floor, base / (2**consecutive_losses))


@dataclass(frozen=True, slots=True)
class KellyStake:
    """What exact Kelly buys: the optimal bankroll share, the shares to add and what they cost."""

    f_star: Decimal
    shares: Decimal
    cost: Decimal


def share_cost(price: Decimal, fee_rate: Decimal, post_only: bool = False) -> Decimal:
    """c: what one share costs all in. A taker pays price + fee_rate x p x (1 - p); a resting post-only
    order pays no fee (c = price)."""
    return price if post_only else price + venue_taker_fee(Decimal(1), price, fee_rate)


def kelly_stake(
    probability: Decimal,
    price: Decimal,
    fee_rate: Decimal,
    bankroll: Decimal,
    fraction: Decimal,
    held: Decimal = Decimal(0),
    post_only: bool = False,
) -> KellyStake | Denial:
    """Exact Kelly with fees for a buy of a token that pays 1 with `probability`, at `price` (the average
    price of walking the book for the intended size, where the caller knows it): with c the all-in cost
    of one share, f* = (p - c) / (1 - c) and no bet when p <= c; the target is fraction x f* x bankroll / c
    shares (rounded down to the venue's size step), and the shares already `held` count against it."""
    if not Decimal(0) < price < Decimal(1):
        return Denial("kelly", f"price {price} outside (0, 1)")
    cost = share_cost(price, fee_rate, post_only)
    if probability <= cost:
        return Denial("kelly", f"no edge: probability {probability} <= cost per share {cost.normalize()}")
    f_star = kelly_optimal(probability, cost)
    target = round_size(fraction * f_star * bankroll / cost)
    shares = max(target - held, Decimal(0))
    if shares <= 0:
        return Denial(
            "kelly",
            f"Kelly target {target} shares at {price} already held ({held})" if target > 0
            else f"Kelly stake {fraction * f_star * bankroll:.4f} buys no share at {cost.normalize()}",
        )
    return KellyStake(f_star=f_star, shares=shares, cost=shares * cost)
