"""The one place that turns settings into Dagster resources (local or production).

Assets never read the environment: they get these resources. Local mode points at the broker and
database of `pets infra up` (read by `load_settings`); production gives every address explicitly
through PETS_* variables, which the resources read as `dg.EnvVar` so Dagster shows the variable's
name, never its value (the DSN carries the database password); the venue URLs default to
Polymarket and are overridden in tests.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from pets.assets.resources import (
    DataApiResource,
    GammaResource,
    KafkaResource,
    ModelStoreResource,
    PostgresResource,
)
from pets.settings import Mode, Settings, SettingsError, load_settings

POSTGRES_DSN_VAR = "PETS_POSTGRES_DSN"
KAFKA_BOOTSTRAP_VAR = "PETS_KAFKA_BOOTSTRAP"


def resources_for(settings: Settings) -> dict[str, Any]:
    """Resources of the code location for these settings; production must name its services."""
    dsn: str = settings.postgres_dsn or ""
    bootstrap: str = settings.kafka_bootstrap or ""
    if settings.mode is Mode.PRODUCTION:
        missing = [
            name for name, value in ((POSTGRES_DSN_VAR, dsn), (KAFKA_BOOTSTRAP_VAR, bootstrap)) if not value
        ]
        if missing:
            raise SettingsError(f"production mode needs {', '.join(missing)}")
        not_exported = [name for name in (POSTGRES_DSN_VAR, KAFKA_BOOTSTRAP_VAR) if not os.environ.get(name)]
        if not_exported:
            raise SettingsError(
                f"production mode reads {', '.join(not_exported)} from the process environment "
                "(Dagster resolves them there so their values never show in its UI): export them"
            )
        dsn, bootstrap = dg.EnvVar(POSTGRES_DSN_VAR), dg.EnvVar(KAFKA_BOOTSTRAP_VAR)
    return {
        "postgres": PostgresResource(dsn=dsn),
        "kafka": KafkaResource(
            bootstrap=bootstrap,
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
        settings.shared_data_dir / "calibration",
    ):
        if (folder / "market_data_one_day_before_certainty.csv").exists():
            return str(folder)
    return ""


ESPORTS_WIN_DATA = ("esports", "datasets", "lol_diamond_ranked_10min.csv")


def esports_win_data(settings: Settings | None = None) -> str:
    """The esports win model's default training games: the shared data set's diamond-ranked games at
    minute 10 (<shared_data_dir>/esports/datasets/lol_diamond_ranked_10min.csv)."""
    settings = settings or load_settings()
    return str(settings.shared_data_dir.joinpath(*ESPORTS_WIN_DATA))
