"""Great Expectations 1.x inside asset checks: validate a polars frame, report what failed.

A check builds its expectations, calls :func:`gx_check` with the frame to validate and gets a
``dg.AssetCheckResult`` whose description and metadata name every failing expectation (its type,
column(s) and a sample of the unexpected values). One in-memory GX context serves the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import dagster as dg
import polars as pl


@cache
def _batch_definition() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(project_config=config, mode="ephemeral")
    asset = context.data_sources.add_pandas("pets").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole")


def _for_gx(frame: pl.DataFrame) -> Any:
    """pandas for GX: decimals become floats (a check compares ranges; money stays exact elsewhere)."""
    decimals = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Decimal)]
    return frame.with_columns([pl.col(c).cast(pl.Float64) for c in decimals]).to_pandas()


def describe_failure(result: Any) -> str:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    target = kwargs.pop("column", None) or kwargs.pop("column_list", None) or ""
    details = result.result or {}
    sample = details.get("partial_unexpected_list") or details.get("observed_value")
    count = details.get("unexpected_count")
    text = f"{config.type}({target})" if target else config.type
    if count is not None:
        text += f": {count} unexpected"
    if sample not in (None, []):
        text += f", e.g. {list(sample)[:5] if isinstance(sample, list) else sample}"
    return text


def gx_check(
    frame: pl.DataFrame,
    expectations: Sequence[Any],
    *,
    suite: str,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    check_name: str | None = None,
    asset_key: dg.AssetKey | None = None,
    metadata: dict[str, Any] | None = None,
) -> dg.AssetCheckResult:
    """Validate ``frame`` against ``expectations`` (GX 1.x objects) as one suite."""
    import great_expectations as gx

    batch_definition = _batch_definition()  # first: a suite needs the context to exist
    gx_suite = gx.ExpectationSuite(name=suite)
    for expectation in expectations:
        gx_suite.add_expectation(expectation)
    result = batch_definition.get_batch(batch_parameters={"dataframe": _for_gx(frame)}).validate(gx_suite)
    failed = [describe_failure(r) for r in result.results if not r.success]
    return dg.AssetCheckResult(
        passed=not failed,
        severity=severity,
        check_name=check_name,
        asset_key=asset_key,
        description="; ".join(failed)
        if failed
        else f"{len(expectations)} expectations met on {frame.height} rows",
        metadata={
            "suite": suite,
            "rows": frame.height,
            "expectations": len(expectations),
            "failed_expectations": failed,
            **(metadata or {}),
        },
    )
