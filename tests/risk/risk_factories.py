"""Hand-built markets, books, intents and reports for the risk tests, and a config with stated numbers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from pets.risk.engine import RiskEngine
from pets.schemas.config import PetsConfig, load_config
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ExecutionReport, OrderIntent

D = Decimal
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
T0_MS = 1_750_000_000_000  # 2025-06-15T15:06:40Z
MS = 1_000_000  # ns per ms


def make_config(**bot_overrides: dict[str, Any]) -> PetsConfig:
    """The shipped config with the numbers these tests compute with stated here, not read from YAML:
    capital 10,000; bot_01 12% / bot_05 15% / bot_07 (directional, enabled here) 10% allocations;
    fee rate 0.03 for every category; caps 20% per bot, 60% per category; breakers 3 losses / 24 h,
    5% daily, 25% bot and 40% portfolio drawdown; 5 orders/s and 120/min; books 5 s."""
    shipped = load_config(CONFIG_DIR)
    system = shipped.system
    system = msgspec.structs.replace(
        system,
        trading=msgspec.structs.replace(system.trading, starting_capital=D(10_000)),
        venue=msgspec.structs.replace(
            system.venue, fee_rates={"default": D("0.03")}, min_marketable_usdc=D(1), min_order_shares=D(5)
        ),
    )
    risk = shipped.risk
    risk = msgspec.structs.replace(
        risk,
        kelly=msgspec.structs.replace(risk.kelly, default_fraction=D("0.5"), min_fraction=D("0.25")),
        leverage=msgspec.structs.replace(risk.leverage, max_gross_leverage=D(1)),
        limits=msgspec.structs.replace(
            risk.limits,
            max_bot_allocation=D("0.20"),
            max_category_exposure=D("0.60"),
            max_orders_per_second=5,
            max_orders_per_minute=120,
            daily_loss_halt=D("0.05"),
            stale_book_max_age_ms=5000,
        ),
        circuit_breakers=msgspec.structs.replace(
            risk.circuit_breakers,
            consecutive_losses=3,
            cooldown_s=86_400,
            bot_drawdown_halt=D("0.25"),
            portfolio_drawdown_emergency=D("0.40"),
        ),
    )
    base: dict[str, dict[str, Any]] = {
        "bot_01": {"capital_allocation": D("0.12"), "min_position_usdc": D(10), "max_position_usdc": D(500)},
        "bot_05": {"capital_allocation": D("0.15"), "min_position_usdc": D(5), "max_position_usdc": D(300)},
        "bot_07": {
            "capital_allocation": D("0.10"),
            "min_position_usdc": D(10),
            "max_position_usdc": D(250),
            "enabled": True,
        },
    }
    bots = []
    for bot in shipped.bots:
        changes = {**base.get(bot.id, {}), **bot_overrides.get(bot.id, {})}
        if bot.id == "bot_08":
            changes.setdefault("risk", msgspec.structs.replace(bot.risk, max_daily_loss_usdc=None))
        bots.append(msgspec.structs.replace(bot, **changes))
    return msgspec.structs.replace(shipped, system=system, risk=risk, bots=tuple(bots))


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
    ts_ms: int = T0_MS,
    tick: str = "0.01",
    stale: bool = False,
    bid_size: str = "100",
    ask_size: str = "100",
) -> TopOfBook:
    b = D(bid) if bid is not None else None
    a = D(ask) if ask is not None else None
    mid = spread = None
    if b is not None and a is not None:
        mid, spread = (b + a) / 2, a - b
    return TopOfBook(
        asset_id=asset_id,
        market=market_id,
        ts_ms=ts_ms,
        best_bid=b,
        best_ask=a,
        best_bid_size=D(bid_size) if b is not None else None,
        best_ask_size=D(ask_size) if a is not None else None,
        mid=mid,
        microprice=mid,
        spread=spread,
        imbalance=D(0),
        tick_size=D(tick),
        stale=stale,
        paired_asset_id=None,
        ask_sum=None,
        bid_sum=None,
        seq=1,
    )


_ids = iter(range(1, 10**9))


def intent(
    bot_id: str = "bot_01",
    side: str = "BUY",
    price: str = "0.47",
    size: str = "40",
    asset_id: str = "yes1",
    market_id: str = "m1",
    ts_ms: int = T0_MS,
    client_order_id: str | None = None,
    **changes: Any,
) -> OrderIntent:
    fields: dict[str, Any] = {
        "client_order_id": client_order_id or f"{bot_id}-t-{next(_ids)}",
        "bot_id": bot_id,
        "strategy_type": "arbitrage",
        "action": "place",
        "market": market_id,
        "asset_id": asset_id,
        "side": side,
        "price": D(price),
        "size": D(size),
        "source_ts_ms": ts_ms,
        "created_ns": ts_ms * MS,
        "category": "sports",
        "order_type": "GTC",
    }
    fields.update(changes)
    return OrderIntent(**fields)


def report(
    order: OrderIntent,
    kind: str,
    qty: str = "0",
    px: str | None = None,
    fee: str = "0",
    ts_ms: int = T0_MS,
    n: int = 1,
    leaves: str = "0",
) -> ExecutionReport:
    return ExecutionReport(
        report_id=f"{order.client_order_id}:{kind}:{n}",
        client_order_id=order.client_order_id,
        venue_order_id=None,
        bot_id=order.bot_id,
        market=order.market,
        asset_id=order.asset_id,
        side=order.side,
        kind=kind,  # type: ignore[arg-type]
        order_price=order.price,
        order_size=order.size,
        last_qty=D(qty),
        last_px=D(px) if px is not None else None,
        cum_qty=D(qty),
        leaves_qty=D(leaves),
        fee=D(fee),
        ts_ns=ts_ms * MS,
        source_ts_ms=ts_ms,
    )


def engine_with_books(config: PetsConfig, ts_ms: int = T0_MS) -> RiskEngine:
    """An engine that knows markets m1..m6 (tokens yes<i>/no<i>) with books 0.49 / 0.51 at `ts_ms`."""
    engine = RiskEngine(config)
    for i in (1, 2, 3, 4, 5, 6):
        engine.on_market(market(f"m{i}", (f"yes{i}", f"no{i}")))
        engine.on_top_of_book(tob(f"yes{i}", f"m{i}", "0.49", "0.51", ts_ms=ts_ms))
        engine.on_top_of_book(tob(f"no{i}", f"m{i}", "0.49", "0.51", ts_ms=ts_ms))
    return engine
