"""Weekly retraining of the calibration model."""

from typing import Any

import dagster as dg

from pets.assets.environment import calibration_data_dir
from pets.assets.models.assets import calibration_model

retrain_job = dg.define_asset_job(
    "retrain_model", selection=[calibration_model], description="Retrain the calibration model."
)


def retrain_run_config(data_dir: str | None = None) -> dict[str, Any]:
    """Run config of a retrain; the data folder defaults to the environment's."""
    folder = calibration_data_dir() if data_dir is None else data_dir
    return {"ops": {"calibration_model": {"config": {"data_dir": folder}}}}


@dg.schedule(name="weekly_retrain", job=retrain_job, cron_schedule="0 4 * * 1", execution_timezone="UTC")
def weekly_retrain(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(run_config=retrain_run_config())
