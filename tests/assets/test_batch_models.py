"""The calibration_model asset: versions in the model store, promotion only when better, its checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from pets.assets.models.assets import MODEL_NAME, calibration_model
from pets.assets.models.checks import model_beats_raw_price, model_metrics_present
from pets.assets.resources import ModelStoreResource


def retrain(store: ModelStoreResource, **config: Any) -> tuple[dict[str, Any], dict[str, bool]]:
    result = dg.materialize(
        [calibration_model, model_metrics_present, model_beats_raw_price],
        run_config={"ops": {"calibration_model": {"config": config}}},
        resources={"model_store": store},
    )
    assert result.success
    metadata = {
        k: v.value for k, v in result.asset_materializations_for_node("calibration_model")[0].metadata.items()
    }
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    return metadata, checks


@pytest.mark.shared_data
def test_versions_and_promotion_on_real_calibration_data(shared_data: Path, tmp_path: Path) -> None:
    store = ModelStoreResource(root=str(tmp_path / "models"))
    data_dir = str(shared_data / "calibration")

    first, checks = retrain(store, data_dir=data_dir)
    assert checks == {"model_metrics_present": True, "model_beats_raw_price": True}
    assert first["version"] == "v0001" and first["promoted"] is True
    assert first["log_loss"] < first["baseline_log_loss"]
    assert store.current_version(MODEL_NAME) == "v0001"

    # The same data gives the same model: not better than the current one, so not promoted.
    second, _ = retrain(store, data_dir=data_dir)
    assert second["version"] == "v0002" and second["promoted"] is False
    assert "does not beat current model" in second["reason"]
    assert store.current_version(MODEL_NAME) == "v0001"

    # A model crushed by a huge penalty is worse than v0001: stored, not promoted, flagged by the warn check.
    third, checks = retrain(store, data_dir=data_dir, l2=1e9)
    assert third["promoted"] is False and third["log_loss"] > first["log_loss"]
    assert checks["model_metrics_present"] is True and checks["model_beats_raw_price"] is False
    assert store.versions(MODEL_NAME) == ["v0001", "v0002", "v0003"]
    record = json.loads((tmp_path / "models" / MODEL_NAME / "v0003" / "metrics.json").read_text())
    assert record["metrics"]["incumbent_version"] == "v0001"
    assert record["metrics"]["incumbent_log_loss"] == pytest.approx(first["log_loss"])


def test_trains_on_simulated_markets_without_recorded_data(tmp_path: Path) -> None:
    store = ModelStoreResource(root=str(tmp_path / "models"))
    metadata, checks = retrain(store)
    assert metadata["source"].startswith("simulated") and metadata["promoted"] is True
    assert all(checks.values())


def test_metrics_check_blocks_when_the_newest_version_has_no_metrics(tmp_path: Path) -> None:
    store = ModelStoreResource(root=str(tmp_path / "models"))
    store.save(MODEL_NAME, b"{}", {"brier": 0.1}, promote=False, reason="hand-made")
    result = dg.materialize(
        [calibration_model, model_metrics_present],
        selection=dg.AssetSelection.checks_for_assets(calibration_model),
        resources={"model_store": store},
        raise_on_error=False,
    )
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed is False
    assert "expect_column_values_to_not_be_null(log_loss)" in str(evaluation.description)
