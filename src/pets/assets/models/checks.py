"""Checks of the newest calibration model version: its metrics are present and sane."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
import polars as pl

from pets.assets.models.assets import MODEL_NAME, calibration_model
from pets.assets.quality import gx_check
from pets.assets.resources import ModelStoreResource

METRICS_PRESENT = "model_metrics_present"
BEATS_BASELINE = "model_beats_raw_price"
METRIC_NAMES = ("brier", "log_loss", "baseline_brier", "baseline_log_loss", "train_rows", "validation_rows")


def metrics_frame(metrics: Mapping[str, Any]) -> pl.DataFrame:
    """The stored metrics as one row; a missing metric is a null cell, a non-number a NaN."""

    def number(value: Any) -> float | None:
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            return float("nan")

    return pl.DataFrame(
        [{name: number(metrics.get(name)) for name in METRIC_NAMES}],
        schema=dict.fromkeys(METRIC_NAMES, pl.Float64),
    )


def check_metrics_present(metrics: Mapping[str, Any]) -> dg.AssetCheckResult:
    import great_expectations as gx

    frame = metrics_frame(metrics)
    expectations: list[Any] = [gx.expectations.ExpectTableRowCountToEqual(value=1)]
    for name in ("brier", "baseline_brier"):
        expectations.append(gx.expectations.ExpectColumnValuesToNotBeNull(column=name))
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeBetween(column=name, min_value=0, max_value=1)
        )
    for name in ("log_loss", "baseline_log_loss"):
        expectations.append(gx.expectations.ExpectColumnValuesToNotBeNull(column=name))
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeBetween(column=name, min_value=0, max_value=50)
        )
    for name in ("train_rows", "validation_rows"):
        expectations.append(gx.expectations.ExpectColumnValuesToNotBeNull(column=name))
        expectations.append(gx.expectations.ExpectColumnValuesToBeBetween(column=name, min_value=1))
    return gx_check(
        frame,
        expectations,
        suite=METRICS_PRESENT,
        check_name=METRICS_PRESENT,
        asset_key=calibration_model.key,
    )


def check_beats_baseline(metrics: Mapping[str, Any]) -> dg.AssetCheckResult:
    import great_expectations as gx

    frame = metrics_frame(metrics)
    return gx_check(
        frame,
        [
            gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="baseline_log_loss", column_B="log_loss"
            )
        ],
        suite=BEATS_BASELINE,
        check_name=BEATS_BASELINE,
        asset_key=calibration_model.key,
        severity=dg.AssetCheckSeverity.WARN,
    )


def latest_metrics(model_store: ModelStoreResource) -> dict[str, Any]:
    versions = model_store.versions(MODEL_NAME)
    if not versions:
        return {}
    _, record = model_store.read(MODEL_NAME, versions[-1])
    metrics: dict[str, Any] = record.get("metrics", {})
    return metrics


@dg.asset_check(
    asset=calibration_model,
    name=METRICS_PRESENT,
    blocking=True,
    description="The newest version has Brier, log loss and their raw-price baselines.",
)
def model_metrics_present(model_store: ModelStoreResource) -> dg.AssetCheckResult:
    return check_metrics_present(latest_metrics(model_store))


@dg.asset_check(
    asset=calibration_model,
    name=BEATS_BASELINE,
    description="The newest version forecasts better than the raw market price (warn).",
)
def model_beats_raw_price(model_store: ModelStoreResource) -> dg.AssetCheckResult:
    return check_beats_baseline(latest_metrics(model_store))
