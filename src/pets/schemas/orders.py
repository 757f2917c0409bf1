"""Order-flow wire messages: intents from bots, the risk verdict, execution reports, positions, P&L.

Money, prices and sizes are Decimal (JSON decimal strings); `*_ns` is our clock in integer
nanoseconds, `*_ms` the venue's milliseconds.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

Side = Literal["BUY", "SELL"]
OrderType = Literal["GTC", "GTD", "FOK", "FAK"]
StrategyType = Literal["arbitrage", "market_making", "directional", "tail_risk"]
OrderAction = Literal["place", "cancel", "replace", "cancel_all"]
ReportKind = Literal["ack", "reject", "partial_fill", "fill", "cancel", "expire"]
Liquidity = Literal["maker", "taker"]

ZERO = Decimal(0)
ENDING_KINDS: frozenset[str] = frozenset({"fill", "cancel", "expire", "reject"})


def make_client_order_id(bot_id: str, market: str, asset_id: str, side: Side, seq: int) -> str:
    """A short id that is the same every time the bot replays the same decision: "<bot>-<hash8>-<seq>"."""
    digest = hashlib.blake2b(f"{market}|{asset_id}|{side}".encode(), digest_size=4).hexdigest()
    return f"{bot_id}-{digest}-{seq}"


def report_id(client_order_id: str, kind: ReportKind, n: int) -> str:
    """Deterministic id of the n-th report of `kind` for one order (replays produce the same ids)."""
    return f"{client_order_id}:{kind}:{n}"


class IntentCause(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why a signal- or model-driven bot proposed an order ("why did bot 9 buy this?")."""

    source: str  # news | esports | whale | model | fair_value ...
    signal_id: str | None = None
    model_version: str | None = None
    probability: Decimal | None = None  # the win probability the bot used
    note: str = ""


class OrderIntent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    client_order_id: str
    bot_id: str
    strategy_type: StrategyType
    action: OrderAction
    market: str
    asset_id: str
    side: Side
    price: Decimal
    size: Decimal
    order_type: OrderType = "GTC"
    post_only: bool = False
    tick_size: Decimal = Decimal("0.01")
    min_order_size: Decimal = Decimal("5")
    neg_risk: bool = False
    category: str = "default"
    probability: Decimal | None = None
    group_id: str | None = None
    # legs in the group (set with group_id): risk holds the legs until all arrived and decides them together
    group_size: Annotated[int, msgspec.Meta(ge=1)] | None = None
    replaces: str | None = None
    source_ts_ms: int
    created_ns: int
    expires_at_ms: int | None = None
    cause: IntentCause | None = None

    @property
    def notional(self) -> Decimal:
        """USDC at stake if fully filled at the limit price."""
        return self.price * self.size


class ApprovedOrder(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    intent: OrderIntent
    size: Decimal
    approved_ns: int
    sequence: int

    @property
    def market(self) -> str:
        """The topic key (order.exec is keyed by market)."""
        return self.intent.market

    @property
    def notional(self) -> Decimal:
        """USDC at stake at the approved size."""
        return self.intent.price * self.size


class OrderDenied(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    intent: OrderIntent
    rule: str
    reason: str
    denied_ns: int

    @property
    def market(self) -> str:
        """The topic key (order.denied is keyed by market)."""
        return self.intent.market


class ExecutionReport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    report_id: str
    client_order_id: str
    venue_order_id: str | None
    bot_id: str
    market: str
    asset_id: str
    side: Side
    kind: ReportKind
    order_price: Decimal
    order_size: Decimal
    last_qty: Decimal = ZERO
    last_px: Decimal | None = None
    cum_qty: Decimal = ZERO
    leaves_qty: Decimal = ZERO
    fee: Decimal = ZERO
    rebate: Decimal = ZERO
    liquidity: Liquidity | None = None
    reason: str | None = None
    trade_id: str | None = None
    ts_ns: int
    source_ts_ms: int

    @property
    def final(self) -> bool:
        """The order is finished: filled, cancelled, expired, rejected, or a partial fill leaving nothing."""
        return self.kind in ENDING_KINDS or (self.kind == "partial_fill" and self.leaves_qty <= 0)

    @classmethod
    def of_order(
        cls,
        intent: OrderIntent,
        size: Decimal,
        kind: ReportKind,
        *,
        ts_ns: int,
        n: int = 1,
        venue_order_id: str | None = None,
        cum_qty: Decimal = ZERO,
        leaves_qty: Decimal = ZERO,
        last_qty: Decimal = ZERO,
        last_px: Decimal | None = None,
        fee: Decimal = ZERO,
        rebate: Decimal = ZERO,
        liquidity: Liquidity | None = None,
        reason: str | None = None,
        trade_id: str | None = None,
        asset_id: str | None = None,
        side: Side | None = None,
        source_ts_ms: int | None = None,
    ) -> ExecutionReport:
        """The `n`-th report of `kind` for the order of `intent` for `size` shares. `asset_id`, `side`
        and `source_ts_ms` default to the intent's (a live fill may be stated in the other token)."""
        return cls(
            report_id=report_id(intent.client_order_id, kind, n),
            client_order_id=intent.client_order_id,
            venue_order_id=venue_order_id,
            bot_id=intent.bot_id,
            market=intent.market,
            asset_id=intent.asset_id if asset_id is None else asset_id,
            side=intent.side if side is None else side,
            kind=kind,
            order_price=intent.price,
            order_size=size,
            last_qty=last_qty,
            last_px=last_px,
            cum_qty=cum_qty,
            leaves_qty=leaves_qty,
            fee=fee,
            rebate=rebate,
            liquidity=liquidity,
            reason=reason,
            trade_id=trade_id,
            ts_ns=ts_ns,
            source_ts_ms=intent.source_ts_ms if source_ts_ms is None else source_ts_ms,
        )

    @classmethod
    def refusal(cls, intent: OrderIntent, reason: str, *, ts_ns: int) -> ExecutionReport:
        """The reject of a request that never became an order (e.g. a cancel of an order not open)."""
        return cls.of_order(intent, intent.size, "reject", reason=reason, ts_ns=ts_ns)


class PnlSnapshot(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    bot_id: str
    ts_ns: int
    cash: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    rebates: Decimal
    exposure: Decimal
    open_orders: int
    trades: int
    wins: int
    losses: int
    max_drawdown: Decimal


class Position(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    bot_id: str
    market: str
    asset_id: str
    qty: Decimal
    avg_price: Decimal
    cost: Decimal
    realized_pnl: Decimal
    ts_ns: int
