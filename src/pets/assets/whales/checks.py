"""Data-quality checks of wallet trades and whale rankings (Great Expectations 1.x on the stored rows)."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from pets.assets.quality import gx_check
from pets.assets.resources import PostgresResource
from pets.assets.whales.assets import read_markets, read_trades, wallet_trades, whale_rankings
from pets.pipelines import whales as w

SIDES_VALID = "trade_sides_valid"
SIZES_NOT_NEGATIVE = "trade_sizes_not_negative"
PRICES_IN_RANGE = "trade_prices_in_range"
OUTCOMES_KNOWN = "traded_outcomes_known"
RANKINGS_ORDERED = "rankings_ordered_and_unique"


def check_sides(trades: pl.DataFrame) -> dg.AssetCheckResult:
    import great_expectations as gx

    return gx_check(
        trades,
        [
            gx.expectations.ExpectColumnValuesToNotBeNull(column="side"),
            gx.expectations.ExpectColumnValuesToBeInSet(column="side", value_set=["BUY", "SELL"]),
        ],
        suite=SIDES_VALID,
        check_name=SIDES_VALID,
        asset_key=wallet_trades.key,
    )


def check_sizes(trades: pl.DataFrame) -> dg.AssetCheckResult:
    import great_expectations as gx

    return gx_check(
        trades,
        [
            gx.expectations.ExpectColumnValuesToNotBeNull(column="shares"),
            gx.expectations.ExpectColumnValuesToBeBetween(column="shares", min_value=0),
            gx.expectations.ExpectColumnValuesToNotBeNull(column="usdc"),
            gx.expectations.ExpectColumnValuesToBeBetween(column="usdc", min_value=0),
        ],
        suite=SIZES_NOT_NEGATIVE,
        check_name=SIZES_NOT_NEGATIVE,
        asset_key=wallet_trades.key,
    )


def check_prices(trades: pl.DataFrame) -> dg.AssetCheckResult:
    import great_expectations as gx

    return gx_check(
        trades,
        [gx.expectations.ExpectColumnValuesToBeBetween(column="price", min_value=0, max_value=1)],
        suite=PRICES_IN_RANGE,
        check_name=PRICES_IN_RANGE,
        asset_key=wallet_trades.key,
    )


def check_outcomes_known(trades: pl.DataFrame, resolutions: pl.DataFrame) -> dg.AssetCheckResult:
    """Warn when a resolved market's trades name an outcome its resolution does not list
    (whale_rankings sends those trades to dlq.signals instead of ranking them)."""
    import great_expectations as gx

    unmatched = w.unmatched_outcomes(trades, resolutions)
    return gx_check(
        unmatched,
        [gx.expectations.ExpectTableRowCountToEqual(value=0)],
        suite=OUTCOMES_KNOWN,
        check_name=OUTCOMES_KNOWN,
        asset_key=wallet_trades.key,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"unmatched": [f"{m}: {o}" for m, o in unmatched.head(20).rows()]},
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            SIDES_VALID, asset=wallet_trades, blocking=True, description="Sides are BUY or SELL."
        ),
        dg.AssetCheckSpec(
            SIZES_NOT_NEGATIVE, asset=wallet_trades, blocking=True, description="No negative shares or USDC."
        ),
        dg.AssetCheckSpec(
            PRICES_IN_RANGE, asset=wallet_trades, blocking=True, description="Prices in [0, 1]."
        ),
        dg.AssetCheckSpec(
            OUTCOMES_KNOWN, asset=wallet_trades, description="Traded outcomes of resolved markets are known."
        ),
    ],
)
def wallet_trades_checks(postgres: PostgresResource) -> Iterator[dg.AssetCheckResult]:
    trades = read_trades(postgres)
    markets = read_markets(postgres).filter(pl.col("closed"))
    yield check_sides(trades)
    yield check_sizes(trades)
    yield check_prices(trades)
    yield check_outcomes_known(trades, w.resolutions_from_markets(markets.iter_rows(named=True)))


RANKING_SCHEMA = {
    "ranking_date": pl.Date,
    "rank": pl.Int64,
    "wallet": pl.String,
    "pnl": w.MONEY,
    "volume": w.MONEY,
}


def check_rankings(rankings: pl.DataFrame) -> dg.AssetCheckResult:
    """Per ranking date: ranks and wallets unique, rank 1 first, and each row ordered after the one
    ranked above it (P&L desc, then volume desc, then address asc)."""
    import great_expectations as gx

    ordered = rankings.sort("ranking_date", "rank").with_columns(
        prev_pnl=pl.col("pnl").shift(1).over("ranking_date"),
        prev_volume=pl.col("volume").shift(1).over("ranking_date"),
        prev_wallet=pl.col("wallet").shift(1).over("ranking_date"),
    )
    in_order = (
        pl.col("prev_pnl").is_null()
        | (pl.col("prev_pnl") > pl.col("pnl"))
        | ((pl.col("prev_pnl") == pl.col("pnl")) & (pl.col("prev_volume") > pl.col("volume")))
        | (
            (pl.col("prev_pnl") == pl.col("pnl"))
            & (pl.col("prev_volume") == pl.col("volume"))
            & (pl.col("prev_wallet") < pl.col("wallet"))
        )
    )
    frame = ordered.with_columns(
        ordered_after_previous=in_order,
        rank_is_position=pl.col("rank") == pl.int_range(1, pl.len() + 1).over("ranking_date"),
    ).drop("prev_pnl", "prev_volume", "prev_wallet")
    return gx_check(
        frame,
        [
            gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["ranking_date", "rank"]),
            gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["ranking_date", "wallet"]),
            gx.expectations.ExpectColumnValuesToBeInSet(column="rank_is_position", value_set=[True]),
            gx.expectations.ExpectColumnValuesToBeInSet(column="ordered_after_previous", value_set=[True]),
        ],
        suite=RANKINGS_ORDERED,
        check_name=RANKINGS_ORDERED,
        asset_key=whale_rankings.key,
        metadata={"ranking_dates": rankings["ranking_date"].n_unique()},
    )


@dg.asset_check(
    asset=whale_rankings,
    name=RANKINGS_ORDERED,
    blocking=True,
    description="Rankings ordered and unique per date.",
)
def rankings_ordered_and_unique(postgres: PostgresResource) -> dg.AssetCheckResult:
    rankings = postgres.frame(
        "SELECT ranking_date, rank, wallet, pnl, volume FROM whale_rankings", RANKING_SCHEMA
    )
    return check_rankings(rankings)
