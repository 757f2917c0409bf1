"""Models, model stores and configs for the tests of Bots 9 and 10."""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import msgspec
from bot_factories import CONFIG, T0, market

from pets.assets.resources import ModelStoreResource
from pets.pipelines.calibration import CalibrationModel, model_to_json
from pets.schemas.config import BotConfig, KellyValueBettingParams, LongTermValueParams
from pets.schemas.market_data import MarketInfo

DAY_MS = 86_400_000
FEE = D("0.03")  # bot_factories' venue: 3% taker feeRate for every category


def constant_model(p: float) -> CalibrationModel:
    """A model that says `p` whatever the features (only the intercept is non-zero)."""
    names = ("logit_price", "log_horizon_days", "log_volume")
    return CalibrationModel(
        features=("intercept", *names),
        weights=(math.log(p / (1 - p)), 0.0, 0.0, 0.0),
        means=dict.fromkeys(names, 0.0),
        scales=dict.fromkeys(names, 1.0),
        categories=("election",),
        l2=1.0,
    )


def promote(root: Path, model: CalibrationModel, promote: bool = True) -> str:
    """Save `model` into a real on-disk model store (the Dagster resource the asset writes through)."""
    store = ModelStoreResource(root=str(root))
    return store.save("calibration", model_to_json(model), {}, promote=promote, reason="test").version


def kelly_params(**changes: Any) -> KellyValueBettingParams:
    fields: dict[str, Any] = {
        "min_edge": D("0.03"),
        "bankroll_usdc": D(1000),
        "kelly_fraction": D("0.25"),
        "max_price": D("0.40"),
        "reload_interval_ms": 60_000,
    }
    return KellyValueBettingParams(**{**fields, **changes})


def ltv_params(**changes: Any) -> LongTermValueParams:
    fields: dict[str, Any] = {
        "min_edge": D("0.02"),
        "bankroll_usdc": D(1000),
        "kelly_fraction": D("0.25"),
        "max_price": D("0.60"),
        "min_annual_return": D("0.20"),
        "max_total_usdc": D(600),
        "exit_margin": D("0.05"),
    }
    return LongTermValueParams(**{**fields, **changes})


def shipped(name: str) -> BotConfig:
    return next(b for b in CONFIG.bots if b.name == name)


def config_of(name: str, params: msgspec.Struct, **changes: Any) -> BotConfig:
    return msgspec.structs.replace(shipped(name), params=params, enabled=True, **changes)


def value_market(cid: str = "m1", days: float = 30, **changes: Any) -> MarketInfo:
    tokens = (f"yes{cid[1:]}", f"no{cid[1:]}")
    return market(cid, tokens, end_date_ms=T0 + int(days * DAY_MS), **changes)


def cost(price: D, fee_rate: D = FEE) -> D:
    """A taker's all-in cost of one share: price + feeRate x p x (1 - p)."""
    return price + fee_rate * price * (1 - price)


def kelly_shares(p: D, price: D, bankroll: D, fraction: D = D("0.25"), held: D = D(0)) -> D:
    """fraction x f* x bankroll / c shares, f* = (p - c) / (1 - c), rounded down to 0.01, less held."""
    c = cost(price)
    f_star = (p - c) / (1 - c)
    return (fraction * f_star * bankroll / c).quantize(D("0.01"), rounding=ROUND_FLOOR) - held
