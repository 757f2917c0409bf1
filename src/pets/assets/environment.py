"""The one place that turns settings into Dagster resources (local or production).

Assets never read the environment: they get these resources. Local mode points at the broker and
database of `pets infra up` (read by `load_settings`); production gives every address explicitly
through PETS_* variables; the venue URLs default to Polymarket and are overridden in tests.
"""

from __future__ import annotations

from typing import Any

from pets.assets.resources import (
    DataApiResource,
    GammaResource,
    KafkaResource,
    ModelStoreResource,
    PostgresResource,
)
from pets.settings import Mode, Settings, SettingsError, load_settings, project_root


def resources_for(settings: Settings) -> dict[str, Any]:
    """Resources of the code location for these settings; production must name its services."""
    if settings.mode is Mode.PRODUCTION:
        missing = [
            name
            for name, value in (
                ("PETS_POSTGRES_DSN", settings.postgres_dsn),
                ("PETS_KAFKA_BOOTSTRAP", settings.kafka_bootstrap),
            )
            if not value
        ]
        if missing:
            raise SettingsError(f"production mode needs {', '.join(missing)}")
    return {
        "postgres": PostgresResource(dsn=settings.postgres_dsn or ""),
        "kafka": KafkaResource(
            bootstrap=settings.kafka_bootstrap or "",
            topic_prefix=settings.topic_prefix,
            config_dir=str(settings.config_dir),
        ),
        "gamma": GammaResource(base_url=settings.venue.gamma_url),
        "data_api": DataApiResource(base_url=settings.venue.data_api_url),
        "model_store": ModelStoreResource(root=str(settings.state_dir / "models")),
    }


def current_resources() -> dict[str, Any]:
    """Resources for the environment this process runs in (what `dagster dev` loads)."""
    return resources_for(load_settings())


def calibration_data_dir(settings: Settings | None = None) -> str:
    """Where retraining finds calibration files: ``<state_dir>/calibration`` when present, else the
    checkout's shared data set, else "" (the asset then trains on seeded simulated markets)."""
    settings = settings or load_settings()
    for folder in (
        settings.state_dir / "calibration",
        project_root().parent / "shared" / "data" / "calibration",
    ):
        if (folder / "market_data_one_day_before_certainty.csv").exists():
            return str(folder)
    return ""
