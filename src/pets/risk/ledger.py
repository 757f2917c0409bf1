"""The risk engine's books: cash, open-order reservations, positions at cost, marks and exposures.

Positions are the FIFO lots of risk/lots.py, the executor's portfolio's too, so both realize the same
P&L from the same fills (before fees; the fees paid less the rebates received are kept beside it).
Exposure (what the limits bound) is money committed: positions at the cost of their lots plus the
reservation of every open buy, its all-in cost at the limit price (notional plus the worst-case taker
fee: none for a post-only order). The same reservation is held back from the cash available to new
orders until the order fills, is cancelled or expires: one cost of an order for every cap.
Everything is exact Decimal and updated incrementally, so a top-of-book update costs a dictionary
lookup unless some bot holds that token.

A "trip" is a position from open to flat in one event (risk/trips.py, counted the same way as the
executor's portfolio counts them for the win rate), the unit of the consecutive-loss breaker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mypy_extensions import mypyc_attr

from pets.native import by_constructor
from pets.risk.lots import Lots
from pets.risk.trips import RoundTrips

ZERO = Decimal(0)
NOBODY: frozenset[str] = frozenset()


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class OpenOrder:
    client_order_id: str
    bot_id: str
    market: str
    asset_id: str
    side: str
    price: Decimal
    remaining: Decimal
    unit_reserve: Decimal  # cash held back per share of a buy: price + worst-case taker fee
    category: str
    event_key: str


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class Holding(Lots):
    """One bot's position in one token (FIFO lots, as the executor's portfolio holds it)."""

    category: str = ""
    event_key: str = ""
    value: Decimal = ZERO  # qty at the latest mark (at cost until the first mark)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class BotLedger:
    budget: Decimal  # capital_allocation x starting capital
    exposure: Decimal = ZERO  # open positions at cost + open buys' reservations
    realized: Decimal = ZERO  # before fees, as the portfolio's realized_pnl
    fees: Decimal = ZERO  # fees paid less rebates received
    cost_open: Decimal = ZERO
    value_open: Decimal = ZERO
    peak: Decimal = ZERO
    day_start_pnl: Decimal = ZERO
    consecutive_losses: int = 0
    holdings: dict[str, Holding] = field(default_factory=dict)
    pending_sells: dict[str, Decimal] = field(default_factory=dict)
    market_cost: dict[str, Decimal] = field(default_factory=dict)  # positions + open buys per market
    trips: RoundTrips = field(default_factory=RoundTrips)

    @property
    def pnl(self) -> Decimal:
        return self.realized - self.fees + self.value_open - self.cost_open

    @property
    def equity(self) -> Decimal:
        return self.budget + self.pnl

    def holding_qty(self, asset_id: str) -> Decimal:
        holding = self.holdings.get(asset_id)
        return holding.qty if holding else ZERO

    def held(self, asset_id: str) -> Decimal:
        """Tokens held and not already offered by an open sell."""
        return self.holding_qty(asset_id) - self.pending_sells.get(asset_id, ZERO)


@dataclass(frozen=True, slots=True)
class ClosedTrip:
    bot_id: str
    event_key: str
    pnl: Decimal

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return by_constructor(self)


@mypyc_attr(allow_interpreted_subclasses=True)
class Ledger:
    def __init__(self, cash: Decimal, budgets: dict[str, Decimal]) -> None:
        self.cash = cash
        self.reserved = ZERO
        self.gross = ZERO  # every bot's exposure
        self.value_total = ZERO  # every holding at its mark
        self.categories: dict[str, Decimal] = {}
        self.bots = {bot_id: BotLedger(budget=b, peak=b) for bot_id, b in budgets.items()}
        self.orders: dict[str, OpenOrder] = {}
        self.marks: dict[str, Decimal] = {}
        self.holders: dict[str, set[str]] = {}

    @property
    def equity(self) -> Decimal:
        return self.cash + self.value_total

    @property
    def available_cash(self) -> Decimal:
        return self.cash - self.reserved

    def bot(self, bot_id: str) -> BotLedger:
        if bot_id not in self.bots:
            self.bots[bot_id] = BotLedger(budget=ZERO)
        return self.bots[bot_id]

    # ------------------------------------------------------------------ orders

    def open(self, order: OpenOrder) -> None:
        self.orders[order.client_order_id] = order
        book = self.bot(order.bot_id)
        if order.side == "BUY":
            self.reserved += order.remaining * order.unit_reserve
            self._expose(book, order.market, order.category, order.remaining * order.unit_reserve)
        else:
            book.pending_sells[order.asset_id] = (
                book.pending_sells.get(order.asset_id, ZERO) + order.remaining
            )

    def release(self, order: OpenOrder, qty: Decimal) -> None:
        """Free the reservation of `qty` shares of an order (filled, cancelled or expired)."""
        qty = min(qty, order.remaining)
        order.remaining -= qty
        book = self.bot(order.bot_id)
        if order.side == "BUY":
            self.reserved -= qty * order.unit_reserve
            self._expose(book, order.market, order.category, -qty * order.unit_reserve)
        else:
            book.pending_sells[order.asset_id] -= qty
        if order.remaining <= 0:
            del self.orders[order.client_order_id]

    # ------------------------------------------------------------------ fills and settlement

    def fill(
        self, order: OpenOrder, qty: Decimal, px: Decimal, fee: Decimal, rebate: Decimal
    ) -> ClosedTrip | None:
        if order.client_order_id in self.orders:  # else a fill after the order closed: nothing reserved
            self.release(order, qty)
        book = self.bot(order.bot_id)
        holding = book.holdings.get(order.asset_id)
        if holding is None:
            holding = book.holdings[order.asset_id] = Holding(
                order.market, order.asset_id, category=order.category, event_key=order.event_key
            )
        signed = qty if order.side == "BUY" else -qty
        self.cash -= signed * px + fee - rebate
        book.fees += fee - rebate
        cost = holding.cost
        realized = holding.trade(signed, px)
        return self._traded(order.bot_id, book, holding, cost, realized, realized - fee + rebate)

    def settle(self, asset_payouts: dict[str, Decimal]) -> list[ClosedTrip]:
        """A market resolved: every holding of its tokens pays `payout` per share and closes."""
        trips: list[ClosedTrip] = []
        for asset_id, payout in asset_payouts.items():
            for bot_id in sorted(self.holders.get(asset_id, ())):
                book = self.bots[bot_id]
                holding = book.holdings[asset_id]
                self.cash += holding.qty * payout
                cost = holding.cost
                realized = holding.settle(payout)
                trip = self._traded(bot_id, book, holding, cost, realized, realized)
                if trip is not None:
                    trips.append(trip)
        return trips

    def drop_orders(self, market: str) -> list[OpenOrder]:
        """Release every open order of a market that can no longer trade (resolved)."""
        gone = [o for o in self.orders.values() if o.market == market]
        for order in gone:
            self.release(order, order.remaining)
        return gone

    # ------------------------------------------------------------------ marks

    def mark(self, asset_id: str, price: Decimal) -> set[str] | frozenset[str]:
        """New mark of a token; returns the bots whose equity it moved."""
        if self.marks.get(asset_id) == price:
            return NOBODY  # most book updates change sizes, not the mid
        self.marks[asset_id] = price
        holders = self.holders.get(asset_id)
        if not holders:
            return NOBODY
        for bot_id in holders:
            book = self.bots[bot_id]
            holding = book.holdings[asset_id]
            value = holding.qty * price
            book.value_open += value - holding.value
            self.value_total += value - holding.value
            holding.value = value
        return holders

    # ------------------------------------------------------------------ internals

    def _expose(self, book: BotLedger, market: str, category: str, amount: Decimal) -> None:
        book.exposure += amount
        self.gross += amount
        self.categories[category] = self.categories.get(category, ZERO) + amount
        book.market_cost[market] = book.market_cost.get(market, ZERO) + amount

    def _traded(
        self, bot_id: str, book: BotLedger, holding: Holding, cost: Decimal, realized: Decimal, net: Decimal
    ) -> ClosedTrip | None:
        """Carry a trade of `holding` (which cost `cost` before it) into the books: it realized
        `realized`, `net` after its fees. Returns the round trip it closed, if any."""
        asset_id = holding.asset_id
        book.realized += realized
        book.cost_open += holding.cost - cost
        self._expose(book, holding.market, holding.category, abs(holding.cost) - abs(cost))
        value = holding.worth(self.marks.get(asset_id))
        book.value_open += value - holding.value
        self.value_total += value - holding.value
        holding.value = value
        if holding.qty:
            self.holders.setdefault(asset_id, set()).add(bot_id)
        else:
            self.holders.get(asset_id, set()).discard(bot_id)
            del book.holdings[asset_id]
        key = holding.event_key
        trip = book.trips.trade(key, asset_id, net, holding.qty)
        return None if trip is None else ClosedTrip(bot_id, key, trip)
