"""The venue's fee formula, in one place, on exact decimals.

Taker: for C shares at price p, fee = C x feeRate x p x (1 - p) (feeRate by market category,
pets.yaml venue.fee_rates). Makers pay nothing and receive `maker_rebate_share` of the taker fee
their fill generated (the venue pays 20-25%). Both are quantized DOWN to the collateral's unit,
1e-6 pUSD, as the exchange contract's integer arithmetic does; every other amount (price x size)
is already exact at 6 decimals (prices 4, sizes 2), so the whole ledger stays on that grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Final

from pets.schemas.config import VenueConfig
from pets.venue.precision import fee_rate
from pets.venue.precision import taker_fee as venue_taker_fee

MICRO: Final = Decimal("0.000001")
ZERO: Final = Decimal(0)


def to_micro_floor(amount: Decimal) -> Decimal:
    """`amount` rounded down to 1e-6 pUSD."""
    return amount.quantize(MICRO, rounding=ROUND_FLOOR)


def taker_fee(size: Decimal, price: Decimal, fee_rate: Decimal) -> Decimal:
    """The taker fee of one fill: size x fee_rate x p x (1 - p), rounded down to 1e-6 pUSD."""
    return to_micro_floor(venue_taker_fee(size, price, fee_rate))


def maker_rebate(size: Decimal, price: Decimal, fee_rate: Decimal, rebate_share: Decimal) -> Decimal:
    """A maker's rebate for one fill: its share of the taker fee that fill paid, rounded down."""
    return to_micro_floor(venue_taker_fee(size, price, fee_rate) * rebate_share)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Fee rates by market category and the maker rebate share (from pets.yaml `venue`)."""

    venue: VenueConfig

    @classmethod
    def from_config(cls, venue: VenueConfig) -> FeeSchedule:
        return cls(venue)

    @property
    def rebate_share(self) -> Decimal:
        return self.venue.maker_rebate_share

    def rate(self, category: str | None, market_rate: Decimal | None = None) -> Decimal:
        return fee_rate(self.venue, category, market_rate)

    def taker(self, size: Decimal, price: Decimal, rate: Decimal) -> Decimal:
        return taker_fee(size, price, rate)

    def maker(self, size: Decimal, price: Decimal, rate: Decimal) -> Decimal:
        return maker_rebate(size, price, rate, self.rebate_share)
