"""Data-quality checks of the market universe (Great Expectations 1.x).

``market_universe`` is partitioned, so its checks are declared on the asset (``UNIVERSE_CHECKS``)
and evaluated on the markets it just fetched, before they are written and published.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
import polars as pl

from pets.assets.quality import gx_check
from pets.pipelines.whales import LEGACY_WIN_PRICE, RESOLVED_SUM_TOLERANCE
from pets.schemas.market_data import MarketInfo

ASSET = "market_universe"
PRICES_IN_RANGE = "market_prices_in_range"
TOKEN_IDS = "market_token_ids_present_and_unique"
RESOLVED_SUM = "resolved_outcome_prices_sum_to_one"

UNIVERSE_CHECKS = [
    dg.AssetCheckSpec(
        PRICES_IN_RANGE,
        asset=ASSET,
        blocking=True,
        description="Outcome prices and tick sizes lie in [0, 1].",
    ),
    dg.AssetCheckSpec(
        TOKEN_IDS,
        asset=ASSET,
        blocking=True,
        description="Every open market has one token id per outcome; token ids are unique.",
    ),
    dg.AssetCheckSpec(
        RESOLVED_SUM,
        asset=ASSET,
        blocking=False,
        description="Outcome prices of resolved markets sum to 1 (warn: such markets are left unresolved).",
    ),
]

OUTCOME_SCHEMA = {
    "condition_id": pl.String,
    "closed": pl.Boolean,
    "outcome": pl.String,
    "token_id": pl.String,
    "outcome_price": pl.Float64,
    "tick_size": pl.Float64,
}


def outcome_rows(markets: Sequence[MarketInfo]) -> pl.DataFrame:
    """One row per market outcome (token id and price may be missing on legacy markets)."""
    rows = []
    for m in markets:
        for i, outcome in enumerate(m.outcomes or ("",)):
            price = m.outcome_prices[i] if m.outcome_prices and i < len(m.outcome_prices) else None
            rows.append(
                (
                    m.condition_id,
                    m.closed,
                    outcome,
                    m.token_ids[i] if i < len(m.token_ids) else None,
                    None if price is None else float(price),
                    float(m.tick_size),
                )
            )
    return pl.DataFrame(rows, schema=OUTCOME_SCHEMA, orient="row")


def check_prices_in_range(outcomes: pl.DataFrame) -> dg.AssetCheckResult:
    import great_expectations as gx

    return gx_check(
        outcomes,
        [
            gx.expectations.ExpectColumnValuesToBeBetween(column="outcome_price", min_value=0, max_value=1),
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="tick_size", min_value=0, max_value=1, strict_min=True
            ),
        ],
        suite=PRICES_IN_RANGE,
        check_name=PRICES_IN_RANGE,
    )


def check_token_ids(outcomes: pl.DataFrame) -> dg.AssetCheckResult:
    import great_expectations as gx

    frame = outcomes.with_columns(
        open_market_has_token=pl.col("closed") | pl.col("token_id").is_not_null(),
    )
    return gx_check(
        frame,
        [
            gx.expectations.ExpectColumnValuesToBeInSet(column="open_market_has_token", value_set=[True]),
            gx.expectations.ExpectColumnValuesToBeUnique(column="token_id"),
            gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["condition_id", "outcome"]),
        ],
        suite=TOKEN_IDS,
        check_name=TOKEN_IDS,
        metadata={"outcomes_without_token": frame["token_id"].null_count()},
    )


def check_resolved_sum(outcomes: pl.DataFrame) -> dg.AssetCheckResult:
    import great_expectations as gx

    resolved = (
        outcomes.filter(pl.col("closed"))
        .group_by("condition_id")
        .agg(price_sum=pl.col("outcome_price").sum(), top_price=pl.col("outcome_price").max())
        .filter(pl.col("top_price") >= float(LEGACY_WIN_PRICE))
        .sort("condition_id")
    )
    tolerance = float(RESOLVED_SUM_TOLERANCE)
    return gx_check(
        resolved,
        [
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="price_sum", min_value=1 - tolerance, max_value=1 + tolerance
            )
        ],
        suite=RESOLVED_SUM,
        check_name=RESOLVED_SUM,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"resolved_markets": resolved.height},
    )


def universe_checks(markets: Sequence[MarketInfo]) -> list[dg.AssetCheckResult]:
    outcomes = outcome_rows(markets)
    return [check_prices_in_range(outcomes), check_token_ids(outcomes), check_resolved_sum(outcomes)]
