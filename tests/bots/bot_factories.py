"""Hand-built markets, books and reports for the bot tests, and bot configs with stated parameters."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from pets.schemas.config import (
    BotConfig,
    MarketMakingParams,
    MarketRebalancingArbParams,
    MultiOutcomeArbParams,
    PetsConfig,
    TailRiskMmParams,
    VenueConfig,
    load_config,
)
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ExecutionReport, OrderIntent

D = Decimal
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
T0 = 1_750_000_000_000

MM_PARAMS = MarketMakingParams(
    half_spread=D("0.01"),
    quote_size_shares=D(50),
    max_inventory_shares=D(500),
    inventory_skew_per_share=D("0.0001"),
    volatility_window_s=60,
    max_volatility=D("0.05"),
    requote_interval_ms=1000,
    requote_min_move_ticks=1,
)
PARAMS: dict[str, Any] = {
    "bot_01": MarketRebalancingArbParams(
        min_edge=D("0.005"),
        max_basket_shares=D(200),
        fee_category="default",
        unwind_after_ms=2000,
        sell_bid_sum_above=D("1.005"),
    ),
    "bot_05": MM_PARAMS,
    "bot_06": MultiOutcomeArbParams(min_edge=D("0.01"), max_basket_usdc=D(500), include_no_side=True),
    "bot_08": TailRiskMmParams(
        tail_min_price=D("0.001"),
        tail_max_price=D("0.05"),
        position_usdc=D(10),
        max_positions=3,
        max_positions_per_event=2,
        market_making=MM_PARAMS,
    ),
}


def load() -> PetsConfig:
    """The shipped config with a 3% taker fee everywhere, $1 marketable minimum and PARAMS above."""
    shipped = load_config(CONFIG_DIR)
    venue = msgspec.structs.replace(
        shipped.system.venue, fee_rates={"default": D("0.03")}, min_marketable_usdc=D(1)
    )
    bots = tuple(
        msgspec.structs.replace(b, params=PARAMS[b.id]) if b.id in PARAMS else b for b in shipped.bots
    )
    return msgspec.structs.replace(
        shipped, system=msgspec.structs.replace(shipped.system, venue=venue), bots=bots
    )


CONFIG = load()
VENUE: VenueConfig = CONFIG.system.venue


def bot_config(bot_id: str, **changes: Any) -> BotConfig:
    return msgspec.structs.replace(CONFIG.bot(bot_id), **changes)


def market(
    condition_id: str = "m1",
    tokens: tuple[str, str] = ("yes1", "no1"),
    tick: str = "0.01",
    **changes: Any,
) -> MarketInfo:
    fields: dict[str, Any] = {
        "condition_id": condition_id,
        "market_id": f"g-{condition_id}",
        "question": "?",
        "slug": condition_id,
        "category": "sports",
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
    asset_id: str,
    market_id: str,
    bid: str | None,
    ask: str | None,
    ts_ms: int = T0,
    bid_size: str = "100",
    ask_size: str = "100",
    tick: str = "0.01",
    stale: bool = False,
) -> TopOfBook:
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
    order: OrderIntent, kind: str, qty: str = "0", px: str | None = None, ts_ms: int = T0, leaves: str = "0"
) -> ExecutionReport:
    return ExecutionReport(
        report_id=f"{order.client_order_id}:{kind}",
        client_order_id=order.client_order_id,
        venue_order_id="v",
        bot_id=order.bot_id,
        market=order.market,
        asset_id=order.asset_id,
        side=order.side,
        kind=kind,  # type: ignore[arg-type]
        order_price=order.price,
        order_size=order.size,
        last_qty=D(qty),
        last_px=D(px) if px else None,
        cum_qty=D(qty),
        leaves_qty=D(leaves),
        ts_ns=ts_ms * 1_000_000,
        source_ts_ms=ts_ms,
    )


def legs(intents: list[OrderIntent]) -> list[tuple[str, str, str, Decimal, Decimal, str]]:
    """(action, token, side, price, size, order type) of each intent: what a test compares."""
    return [(i.action, i.asset_id, i.side, i.price, i.size, i.order_type) for i in intents]
