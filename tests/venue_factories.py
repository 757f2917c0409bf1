"""Hand-built markets, tops of book and execution reports, shared by the bot and risk tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ExecutionReport, OrderIntent

D = Decimal
T0 = 1_750_000_000_000  # venue ms: 2025-06-15T15:06:40Z
MS = 1_000_000  # ns per ms


def market(
    condition_id: str = "m1",
    tokens: tuple[str, str] = ("yes1", "no1"),
    category: str = "sports",
    tick: str = "0.01",
    **changes: Any,
) -> MarketInfo:
    fields: dict[str, Any] = {
        "condition_id": condition_id,
        "market_id": f"g-{condition_id}",
        "question": "?",
        "slug": condition_id,
        "category": category,
        "token_ids": tokens,
        "outcomes": ("Yes", "No"),
        "neg_risk": False,
        "tick_size": D(tick),
        "min_order_size": D(5),
        "active": True,
        "closed": False,
        "accepting_orders": True,
    }
    fields.update(changes)
    return MarketInfo(**fields)


def tob(
    asset_id: str = "yes1",
    market_id: str = "m1",
    bid: str | None = "0.45",
    ask: str | None = "0.47",
    ts_ms: int = T0,
    bid_size: str = "100",
    ask_size: str = "100",
    tick: str = "0.01",
    stale: bool = False,
) -> TopOfBook:
    """A top of book with the features the market-state engine computes from the best levels (mid,
    spread, size-weighted microprice)."""
    b = D(bid) if bid is not None else None
    a = D(ask) if ask is not None else None
    mid = micro = spread = None
    if b is not None and a is not None:
        mid, spread = (b + a) / 2, a - b
        micro = (b * D(ask_size) + a * D(bid_size)) / (D(bid_size) + D(ask_size))
    return TopOfBook(
        asset_id=asset_id,
        market=market_id,
        ts_ms=ts_ms,
        best_bid=b,
        best_ask=a,
        best_bid_size=D(bid_size) if b is not None else None,
        best_ask_size=D(ask_size) if a is not None else None,
        mid=mid,
        microprice=micro,
        spread=spread,
        imbalance=D(0),
        tick_size=D(tick),
        stale=stale,
        paired_asset_id=None,
        ask_sum=None,
        bid_sum=None,
        seq=1,
    )


def report(
    order: OrderIntent,
    kind: str,
    qty: str = "0",
    px: str | None = None,
    fee: str = "0",
    ts_ms: int = T0,
    n: int = 1,
    leaves: str = "0",
    rebate: str = "0",
) -> ExecutionReport:
    """The `n`-th report of `kind` for `order` (`qty` filled now at `px`, the cumulative qty too)."""
    return ExecutionReport.of_order(
        order,
        order.size,
        kind,  # type: ignore[arg-type]
        ts_ns=ts_ms * MS,
        n=n,
        cum_qty=D(qty),
        leaves_qty=D(leaves),
        last_qty=D(qty),
        last_px=D(px) if px is not None else None,
        fee=D(fee),
        rebate=D(rebate),
        source_ts_ms=ts_ms,
    )
