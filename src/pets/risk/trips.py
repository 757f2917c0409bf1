"""Round trips: the unit of the win rate and of the consecutive-loss breaker.

A round trip is one bot's holding in one event from open to flat: a binary market, or a whole
negative-risk event, so an arbitrage basket's winning and losing legs count once. It carries the net
P&L made on the way (fees paid, rebates received) and closes when the bot holds no token of the event;
it is a win when that P&L is above zero, else a loss (a scratch trip paid for nothing). The executor's
portfolio (win rate) and the risk engine's ledger (consecutive-loss breaker) both count them with this.
"""

from __future__ import annotations

from decimal import Decimal

from mypy_extensions import mypyc_attr

ZERO = Decimal(0)


@mypyc_attr(allow_interpreted_subclasses=True)
class RoundTrips:
    """One bot's open round trips, by event key."""

    def __init__(self) -> None:
        self.pnl: dict[str, Decimal] = {}  # event -> net P&L of its open round trip so far
        self.held: dict[str, set[str]] = {}  # event -> tokens of it the bot holds
        self.wins = 0
        self.losses = 0

    def add(self, event: str, pnl: Decimal) -> None:
        self.pnl[event] = self.pnl.get(event, ZERO) + pnl

    def hold(self, event: str, asset_id: str, qty: Decimal) -> None:
        """The bot now holds `qty` of the token (0: none)."""
        tokens = self.held.setdefault(event, set())
        if qty:
            tokens.add(asset_id)
        else:
            tokens.discard(asset_id)

    def trade(self, event: str, asset_id: str, pnl: Decimal, qty: Decimal) -> Decimal | None:
        """A fill or settlement of a token of the event made `pnl` (net) and left `qty` of it held: the
        trip's P&L when that closed it, else None."""
        self.add(event, pnl)
        self.hold(event, asset_id, qty)
        return self.close(event)

    def close(self, event: str) -> Decimal | None:
        """The round trip's P&L when the bot is flat in the event (the trip is then over and counted as
        a win or a loss), else None."""
        if self.held.get(event):
            return None
        self.held.pop(event, None)
        pnl = self.pnl.pop(event, None)
        if pnl is not None:
            if won(pnl):
                self.wins += 1
            else:
                self.losses += 1
        return pnl


def won(pnl: Decimal) -> bool:
    return pnl > 0
