"""Positions, cash and P&L per bot, from execution reports; exact Decimal throughout.

Accounting:
- Positions are FIFO lots per (bot, token) (risk/lots.py, the risk ledger's too): a fill that reduces
  a position closes the oldest lots first and realizes (fill price - lot price) x qty, exactly.
- Cash per bot starts at its allocation (capital_allocation x starting capital); a buy pays
  qty x price, a sell receives it, a fill pays its taker fee and receives its maker rebate; a
  settlement pays 1 (or the final price) per winning share. Portfolio cash = starting capital
  minus the allocations plus every bot's cash, so unallocated capital is counted once.
- realized_pnl is the trading result before fees; pnl (net) = realized + unrealized - fees + rebates
  = equity - allocation. Unrealized values open lots at the token's latest mid (`on_mark`), at cost
  until a mid is known.
- A round trip (trade for the win rate) is one bot's holding in one event from open to flat: a binary
  market, or a whole negative-risk event so an arbitrage basket's winning and losing legs count as
  one. It wins when its net P&L (realized - fees + rebates over the trip) is above zero.
- Reports are applied once each (by report_id), so a re-delivered report changes nothing, and the
  same reports in the same order always rebuild the same state (`rebuild`, used on restart).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

import msgspec
from mypy_extensions import mypyc_attr

from pets.execution.metrics import drawdown_after
from pets.risk.lots import Lots
from pets.risk.trips import RoundTrips
from pets.schemas.market_data import MarketInfo, MarketResolved
from pets.schemas.orders import ExecutionReport, PnlSnapshot, Position
from pets.venue.fees import MICRO

ZERO: Final = Decimal(0)
PORTFOLIO: Final = "portfolio"


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class Holding(Lots):
    """One bot's position in one token (FIFO lots) and the time it last changed."""

    ts_ns: int = 0


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class Account:
    bot_id: str
    allocation: Decimal
    cash: Decimal
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    rebates: Decimal = ZERO
    fills: int = 0
    peak: Decimal = ZERO
    max_drawdown: Decimal = ZERO
    holdings: dict[str, Holding] = field(default_factory=dict)  # by asset id
    trips: RoundTrips = field(default_factory=RoundTrips)


@mypyc_attr(allow_interpreted_subclasses=True)
class Portfolio:
    """Every bot's account plus the marks, fed by execution reports, marks and resolutions."""

    def __init__(self, starting_capital: Decimal, allocations: Mapping[str, Decimal]) -> None:
        self.starting_capital = starting_capital
        self.allocations = dict(allocations)
        self.accounts: dict[str, Account] = {}
        self.marks: dict[str, Decimal] = {}
        self.event_of: dict[str, str] = {}  # market -> event key (the neg-risk group when it has one)
        self.settled: set[str] = set()
        self.applied: set[str] = set()  # report ids already applied
        self.peak = starting_capital
        self.max_drawdown = ZERO
        self.unallocated = starting_capital - sum(self.allocations.values(), ZERO)

    @classmethod
    def rebuild(
        cls, starting_capital: Decimal, allocations: Mapping[str, Decimal], reports: Iterable[ExecutionReport]
    ) -> Portfolio:
        """The portfolio the reports lead to (restart reconciliation from the database)."""
        portfolio = cls(starting_capital, allocations)
        for report in reports:
            portfolio.on_report(report)
        return portfolio

    def account(self, bot_id: str) -> Account:
        account = self.accounts.get(bot_id)
        if account is None:
            allocation = self.allocations.get(bot_id, ZERO)
            account = self.accounts[bot_id] = Account(bot_id, allocation, allocation, peak=allocation)
        return account

    # ------------------------------------------------------------------ events

    def on_market(self, info: MarketInfo, ts_ns: int) -> list[Position]:
        """Learn the market's event; settle it when the venue says it resolved."""
        self.event_of[info.condition_id] = info.neg_risk_market_id or info.condition_id
        if info.market_id:
            self.event_of[info.market_id] = self.event_of[info.condition_id]
        payouts = info.payouts()
        if payouts is None:
            return []
        return self.settle(info.condition_id, payouts, ts_ns)

    def on_report(self, report: ExecutionReport) -> Position | None:
        """Apply a fill (partial or full); None for other reports and for a report already applied."""
        if report.last_qty <= 0 or report.kind not in ("fill", "partial_fill"):
            return None
        if report.report_id in self.applied:
            return None
        self.applied.add(report.report_id)
        account = self.account(report.bot_id)
        qty, px = report.last_qty, report.last_px if report.last_px is not None else report.order_price
        signed = qty if report.side == "BUY" else -qty
        holding = account.holdings.get(report.asset_id)
        if holding is None:
            holding = account.holdings[report.asset_id] = Holding(report.market, report.asset_id)
        event = self.event_of.get(report.market, report.market)
        realized = holding.trade(signed, px)
        account.cash += -signed * px - report.fee + report.rebate
        account.realized += realized
        account.fees += report.fee
        account.rebates += report.rebate
        account.fills += 1
        account.trips.trade(event, report.asset_id, realized - report.fee + report.rebate, holding.qty)
        holding.ts_ns = report.ts_ns
        return self._position(account.bot_id, holding)

    def on_mark(self, asset_id: str, mid: Decimal) -> None:
        self.marks[asset_id] = mid

    def settle(self, market: str, payouts: Mapping[str, Decimal], ts_ns: int) -> list[Position]:
        """Close every position in `market` at its payout (1 for the winner, 0 otherwise)."""
        if market in self.settled:
            return []
        self.settled.add(market)
        event = self.event_of.get(market, market)
        changed: list[Position] = []
        for account in self.accounts.values():
            for asset_id, payout in payouts.items():
                holding = account.holdings.get(asset_id)
                if holding is None or not holding.qty:
                    continue
                account.cash += holding.qty * payout
                realized = holding.settle(payout)
                account.realized += realized
                account.trips.trade(event, asset_id, realized, holding.qty)
                holding.ts_ns = ts_ns
                self.marks[asset_id] = payout
                changed.append(self._position(account.bot_id, holding))
        return changed

    # ------------------------------------------------------------------ views

    def free_cash(self) -> Decimal:
        """The wallet's cash (the paper exchange subtracts its open buy orders)."""
        return self.cash

    def token_balance(self, bot_id: str, asset_id: str) -> Decimal:
        account = self.accounts.get(bot_id)
        holding = account.holdings.get(asset_id) if account is not None else None
        return holding.qty if holding is not None and holding.qty > 0 else ZERO

    @property
    def cash(self) -> Decimal:
        return (
            self.unallocated
            + sum((a.cash for a in self.accounts.values()), ZERO)
            + sum((alloc for bot, alloc in self.allocations.items() if bot not in self.accounts), ZERO)
        )

    def valuation(self, account: Account) -> tuple[Decimal, Decimal, Decimal]:
        """(unrealized P&L, market value, cost exposure) of the account's holdings, in one pass.
        Unrealized and market value count open holdings at their mark (market value: at cost until
        the first mark); the exposure is the absolute cost of every holding."""
        unrealized = value = exposure = ZERO
        marks = self.marks
        for holding in account.holdings.values():
            cost = holding.cost
            exposure += abs(cost)
            if holding.qty:
                mark = marks.get(holding.asset_id)
                worth = holding.worth(mark)
                value += worth
                if mark is not None:
                    unrealized += worth - cost
        return unrealized, value, exposure

    def positions(self, ts_ns: int | None = None) -> list[Position]:
        """Every (bot, token) position ever held, flat ones included (their realized P&L stays)."""
        return [
            self._position(account.bot_id, holding, ts_ns)
            for account in self.accounts.values()
            for holding in account.holdings.values()
        ]

    def _position(self, bot_id: str, holding: Holding, ts_ns: int | None = None) -> Position:
        return Position(
            bot_id=bot_id,
            market=holding.market,
            asset_id=holding.asset_id,
            qty=holding.qty,
            avg_price=holding.avg_price,
            cost=holding.cost,
            realized_pnl=holding.realized,
            ts_ns=holding.ts_ns if ts_ns is None else ts_ns,
        )

    def snapshot(
        self, ts_ns: int, open_orders: Mapping[str, tuple[int, Decimal]] | None = None
    ) -> list[PnlSnapshot]:
        """P&L per bot with an account and for the portfolio ("portfolio"); updates the drawdown peaks.

        `open_orders`: bot -> (open order count, notional of its open buys), for exposure.
        """
        orders = open_orders or {}
        out: list[PnlSnapshot] = []
        total_unrealized = total_exposure = ZERO
        total_orders = 0
        values: dict[str, Decimal] = {}
        for bot_id in sorted(self.accounts):
            account = self.accounts[bot_id]
            unrealized, value, exposure = self.valuation(account)
            values[bot_id] = value
            equity = account.cash + value
            account.peak, account.max_drawdown = drawdown_after(account.peak, account.max_drawdown, equity)
            count, buys = orders.get(bot_id, (0, ZERO))
            exposure += buys
            total_unrealized += unrealized
            total_exposure += exposure
            total_orders += count
            out.append(
                PnlSnapshot(
                    bot_id=bot_id,
                    ts_ns=ts_ns,
                    cash=account.cash,
                    equity=equity,
                    realized_pnl=account.realized,
                    unrealized_pnl=unrealized,
                    fees=account.fees,
                    rebates=account.rebates,
                    exposure=exposure,
                    open_orders=count,
                    trades=account.fills,
                    wins=account.trips.wins,
                    losses=account.trips.losses,
                    max_drawdown=_ratio(account.max_drawdown),
                )
            )
        accounts = self.accounts.values()
        cash = self.cash
        equity = cash + sum((values[a.bot_id] for a in accounts), ZERO)
        self.peak, self.max_drawdown = drawdown_after(self.peak, self.max_drawdown, equity)
        out.append(
            PnlSnapshot(
                bot_id=PORTFOLIO,
                ts_ns=ts_ns,
                cash=cash,
                equity=equity,
                realized_pnl=sum((a.realized for a in accounts), ZERO),
                unrealized_pnl=total_unrealized,
                fees=sum((a.fees for a in accounts), ZERO),
                rebates=sum((a.rebates for a in accounts), ZERO),
                exposure=total_exposure,
                open_orders=total_orders,
                trades=sum(a.fills for a in accounts),
                wins=sum(a.trips.wins for a in accounts),
                losses=sum(a.trips.losses for a in accounts),
                max_drawdown=_ratio(self.max_drawdown),
            )
        )
        return out


def _ratio(value: Decimal) -> Decimal:
    """A drawdown fraction for display and storage (6 decimals)."""
    return value.quantize(MICRO)


def resolved_market(event: MarketResolved, known: MarketInfo | None) -> MarketInfo:
    """The final state of a market after its `market_resolved` frame (closed, the winner named)."""
    if known is None:
        known = MarketInfo(
            condition_id=event.market,
            market_id=event.id or event.market,
            question="",
            slug="",
            category="default",
            token_ids=tuple(event.assets_ids) or (event.winning_asset_id,),
            outcomes=(),
            neg_risk=False,
            tick_size=Decimal("0.01"),
            min_order_size=Decimal(5),
            active=True,
            closed=False,
            accepting_orders=True,
        )
    return msgspec.structs.replace(
        known, active=False, closed=True, accepting_orders=False, winning_asset_id=event.winning_asset_id
    )
