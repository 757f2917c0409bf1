"""A position's accounting: the one rule for what a fill or a resolution realizes.

One bot's position in one token is a queue of FIFO lots, all long or all short. A fill that reduces
the position closes the oldest lots first and realizes (fill price - lot price) x qty; a fill past
zero closes them all and opens a lot the other way with the rest. Lots keep every amount exact in
Decimal (an average cost would need a division); `avg_price` is for display only. Realized P&L is the
trading result before fees: fees and rebates are cash of the fill, kept by the holder.

The risk engine's ledger (risk/ledger.py) and the executor's portfolio (execution/portfolio.py) both
hold their positions as `Lots`, so they realize the same P&L from the same fills.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from mypy_extensions import mypyc_attr

from pets.venue.fees import MICRO

ZERO: Final = Decimal(0)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class Lots:
    """One bot's position in one token."""

    market: str
    asset_id: str
    lots: deque[tuple[Decimal, Decimal]] = field(default_factory=deque)  # (signed qty, price)
    qty: Decimal = ZERO
    cost: Decimal = ZERO  # sum of qty x price of the open lots (negative when short)
    realized: Decimal = ZERO

    def trade(self, qty: Decimal, price: Decimal) -> Decimal:
        """Apply a signed fill (+ buy, - sell) at `price`; returns the P&L it realized."""
        realized = ZERO
        lots = self.lots
        while qty and lots and (lots[0][0] > 0) != (qty > 0):
            lot_qty, lot_price = lots[0]
            closed = lot_qty if abs(lot_qty) <= abs(qty) else -qty
            realized += closed * (price - lot_price)
            self.cost -= closed * lot_price
            if closed == lot_qty:
                lots.popleft()
            else:
                lots[0] = (lot_qty - closed, lot_price)
            qty += closed
            self.qty -= closed
        if qty:
            lots.append((qty, price))
            self.cost += qty * price
            self.qty += qty
        self.realized += realized
        return realized

    def settle(self, payout: Decimal) -> Decimal:
        """The market resolved: the whole position closes at `payout` per share (1 for the winning
        token, 0 otherwise); returns the P&L it realized."""
        return self.trade(-self.qty, payout)

    def worth(self, mark: Decimal | None) -> Decimal:
        """The position at `mark`; at cost while no mark is known."""
        return self.cost if mark is None else self.qty * mark

    @property
    def avg_price(self) -> Decimal:
        return (self.cost / self.qty).quantize(MICRO) if self.qty else ZERO
