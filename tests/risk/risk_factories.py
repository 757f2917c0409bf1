"""Intents, an engine with books and a config with stated numbers for the risk tests; markets, books
and reports come from tests/venue_factories.py (re-exported here)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from pets.risk.engine import RiskEngine
from pets.schemas.config import PetsConfig, RiskOverrides, load_config
from pets.schemas.orders import OrderIntent
from venue_factories import MS as MS
from venue_factories import T0 as T0_MS
from venue_factories import market as market
from venue_factories import report as report
from venue_factories import tob as tob

D = Decimal
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def make_config(**bot_overrides: dict[str, Any]) -> PetsConfig:
    """The shipped config with the numbers these tests compute with stated here, not read from YAML:
    capital 10,000; bot_01 12% / bot_05 15% / bot_04 (directional news scalping, enabled here, no
    Kelly override) 10% allocations; bot_02 disabled here (the tests of a disabled bot);
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
        "bot_04": {
            "capital_allocation": D("0.10"),
            "risk": RiskOverrides(),
            "min_position_usdc": D(10),
            "max_position_usdc": D(250),
            "enabled": True,
        },
        "bot_02": {"enabled": False},
    }
    bots = []
    for bot in shipped.bots:
        changes = {**base.get(bot.id, {}), **bot_overrides.get(bot.id, {})}
        if bot.id == "bot_08":
            changes.setdefault("risk", msgspec.structs.replace(bot.risk, max_daily_loss_usdc=None))
        bots.append(msgspec.structs.replace(bot, **changes))
    return msgspec.structs.replace(shipped, system=system, risk=risk, bots=tuple(bots))


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


def engine_with_books(config: PetsConfig, ts_ms: int = T0_MS) -> RiskEngine:
    """An engine that knows markets m1..m6 (tokens yes<i>/no<i>) with books 0.49 / 0.51 at `ts_ms`."""
    engine = RiskEngine(config)
    for i in (1, 2, 3, 4, 5, 6):
        engine.on_market(market(f"m{i}", (f"yes{i}", f"no{i}")))
        engine.on_top_of_book(tob(f"yes{i}", f"m{i}", "0.49", "0.51", ts_ms=ts_ms))
        engine.on_top_of_book(tob(f"no{i}", f"m{i}", "0.49", "0.51", ts_ms=ts_ms))
    return engine
