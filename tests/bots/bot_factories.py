"""Bot configs with stated parameters for the bot tests; markets, books and reports come from
tests/venue_factories.py (re-exported here)."""

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
from pets.schemas.orders import OrderIntent
from venue_factories import T0 as T0
from venue_factories import market as market
from venue_factories import report as report
from venue_factories import tob as tob

D = Decimal
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

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


def legs(intents: list[OrderIntent]) -> list[tuple[str, str, str, Decimal, Decimal, str]]:
    """(action, token, side, price, size, order type) of each intent: what a test compares."""
    return [(i.action, i.asset_id, i.side, i.price, i.size, i.order_type) for i in intents]
