"""Model retraining: the calibration model, versioned in the model store, promoted only when better."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from pets.assets.resources import ModelStoreResource
from pets.pipelines import calibration as cal

MODEL_NAME = "calibration"


class CalibrationConfig(dg.Config):
    data_dir: str = Field(
        default="",
        description="Folder of the calibration files (market_data_*_before_certainty.csv); "
        "empty: seeded simulated markets.",
    )
    validation_share: float = Field(
        default=0.25, description="Share of the latest resolved rows kept for validation."
    )
    l2: float = Field(default=1.0, description="L2 penalty of the logistic regression.")


@dg.asset(group_name="models", kinds={"numpy", "polars"})
def calibration_model(
    context: dg.AssetExecutionContext, config: CalibrationConfig, model_store: ModelStoreResource
) -> dg.MaterializeResult:
    """P(outcome) from price, horizon, volume and category; promoted only if it beats the current one."""
    if config.data_dir:
        data, source = cal.read_calibration_dir(Path(config.data_dir)), config.data_dir
    else:
        data, source = cal.simulate_calibration(), "simulated (seed 11)"
    model, metrics, validation = cal.train_and_score(
        data, validation_share=config.validation_share, l2=config.l2
    )
    current = model_store.current_version(MODEL_NAME)
    incumbent_log_loss = None
    if current is not None:
        raw, _ = model_store.read(MODEL_NAME, current)
        _, incumbent_log_loss = cal.evaluate(cal.model_from_json(raw), validation)
    promote, reason = cal.promotion_decision(metrics, incumbent_log_loss)
    record = model_store.save(
        MODEL_NAME,
        cal.model_to_json(model),
        {**cal.metrics_dict(metrics), "incumbent_version": current, "incumbent_log_loss": incumbent_log_loss},
        promote=promote,
        reason=reason,
    )
    context.log.info(
        f"{MODEL_NAME} {record.version}: {'promoted' if promote else 'kept ' + str(current)}: {reason}"
    )
    return dg.MaterializeResult(
        metadata={
            "version": record.version,
            "promoted": promote,
            "reason": reason,
            "current_version": record.version if promote else (current or ""),
            "source": source,
            "brier": metrics.brier,
            "log_loss": metrics.log_loss,
            "baseline_brier": metrics.baseline_brier,
            "baseline_log_loss": metrics.baseline_log_loss,
            "train_rows": metrics.train_rows,
            "validation_rows": metrics.validation_rows,
            "features": ", ".join(model.features),
            "path": dg.MetadataValue.path(record.path),
        }
    )
