"""The code location's resources: production addresses stay out of the Dagster UI; shared data by setting."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value

from pets.assets.environment import calibration_data_dir, resources_for
from pets.settings import Mode, Settings, SettingsError

DSN = "postgresql://pets:s3cret-password@db.internal:5432/pets"
BOOTSTRAP = "kafka-1.internal:9092"


def _what_the_ui_reads(resources: dict[str, object]) -> str:
    """The serialized repository snapshot: what the Dagster webserver shows of the resources."""
    definitions = dg.Definitions(resources=resources)
    return serialize_value(RepositorySnap.from_def(definitions.get_repository_def()))


def test_production_addresses_are_environment_variables_not_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETS_POSTGRES_DSN", DSN)
    monkeypatch.setenv("PETS_KAFKA_BOOTSTRAP", BOOTSTRAP)
    production = Settings(mode=Mode.PRODUCTION, postgres_dsn=DSN, kafka_bootstrap=BOOTSTRAP)
    shown = _what_the_ui_reads(resources_for(production))
    assert "PETS_POSTGRES_DSN" in shown and "PETS_KAFKA_BOOTSTRAP" in shown
    assert "s3cret-password" not in shown and BOOTSTRAP not in shown


def test_production_addresses_must_be_exported_for_dagster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PETS_POSTGRES_DSN", raising=False)
    monkeypatch.setenv("PETS_KAFKA_BOOTSTRAP", BOOTSTRAP)
    production = Settings(mode=Mode.PRODUCTION, postgres_dsn=DSN, kafka_bootstrap=BOOTSTRAP)
    with pytest.raises(SettingsError, match="reads PETS_POSTGRES_DSN from the process environment"):
        resources_for(production)


def test_calibration_data_comes_from_the_shared_data_setting(tmp_path: Path) -> None:
    shared = tmp_path / "elsewhere"
    (shared / "calibration").mkdir(parents=True)
    (shared / "calibration" / "market_data_one_day_before_certainty.csv").write_text("x\n")
    settings = Settings(state_dir=tmp_path / "state", shared_data_dir=shared)
    assert calibration_data_dir(settings) == str(shared / "calibration")
