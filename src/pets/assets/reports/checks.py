"""Checks of the daily bot performance, declared on the partitioned asset (``PERFORMANCE_CHECKS``)."""

from __future__ import annotations

import dagster as dg
import polars as pl

from pets.assets.quality import gx_check

ASSET = "bot_performance_daily"
METRICS_VALID = "performance_metrics_valid"

PERFORMANCE_CHECKS = [
    dg.AssetCheckSpec(
        METRICS_VALID,
        asset=ASSET,
        blocking=True,
        description="One row per bot and day; counts not negative, win rate in [0, 1], drawdown >= 0.",
    ),
]


def check_performance(rows: pl.DataFrame) -> dg.AssetCheckResult:
    import great_expectations as gx

    expectations = [
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["day", "bot_id"]),
        gx.expectations.ExpectColumnValuesToBeBetween(column="snapshots", min_value=1),
        gx.expectations.ExpectColumnValuesToBeBetween(column="trades", min_value=0),
        gx.expectations.ExpectColumnValuesToBeBetween(column="win_rate", min_value=0, max_value=1),
        gx.expectations.ExpectColumnValuesToBeBetween(column="max_drawdown", min_value=0),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="pnl"),
    ]
    return gx_check(rows, expectations, suite=METRICS_VALID, check_name=METRICS_VALID)
