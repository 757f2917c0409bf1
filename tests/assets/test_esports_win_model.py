"""The esports_win_model asset and `pets esports model train|evaluate`: one code path, versions in the
model store, promotion only when better, evaluation of the promoted version on games it never saw."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest
from click.testing import CliRunner

from pets.assets.models.esports import MODEL_NAME, esports_win_metrics_present, esports_win_model
from pets.assets.resources import ModelStoreResource
from pets.cli import main
from pets.pipelines.esports import winmodel as wm

DIAMOND = ("esports", "datasets", "lol_diamond_ranked_10min.csv")
pytestmark = pytest.mark.shared_data


def materialize(store: ModelStoreResource, **config: Any) -> dict[str, Any]:
    result = dg.materialize(
        [esports_win_model, esports_win_metrics_present],
        run_config={"ops": {"esports_win_model": {"config": config}}},
        resources={"model_store": store},
    )
    assert result.success
    assert [(e.check_name, e.passed) for e in result.get_asset_check_evaluations()] == [
        ("esports_win_metrics_present", True)
    ]
    [event] = result.asset_materializations_for_node("esports_win_model")
    return {k: v.value for k, v in event.metadata.items()}


def split_csv(source: Path, folder: Path, train_share: float = 0.75) -> tuple[Path, Path]:
    """The shared games split by game id (time on the platform): earlier ones to train, later to test."""
    with source.open() as f:
        rows = list(csv.reader(f))
    header, body = rows[0], sorted(rows[1:], key=lambda r: int(r[0]))
    cut = int(len(body) * train_share)
    paths = folder / "train.csv", folder / "unseen.csv"
    for path, part in zip(paths, (body[:cut], body[cut:]), strict=True):
        with path.open("w", newline="") as f:
            csv.writer(f).writerows([header, *part])
    return paths


def test_the_asset_versions_and_promotes_only_a_better_model(shared_data: Path, tmp_path: Path) -> None:
    store = ModelStoreResource(root=str(tmp_path / "models"))
    data = str(shared_data.joinpath(*DIAMOND))
    first = materialize(store, data_file=data)
    assert (first["version"], first["promoted"]) == ("v0001", True)
    assert first["log_loss"] < first["baseline_log_loss"] and first["accuracy"] > first["baseline_accuracy"]
    assert (first["train_games"], first["validation_games"]) == (6000, 2000)
    # the same data again: not better than itself, kept
    again = materialize(store, data_file=data)
    assert (again["version"], again["promoted"]) == ("v0002", False)
    # an absurd penalty flattens the model: worse than the promoted one, kept
    flat = materialize(store, data_file=data, l2=1e7)
    assert flat["promoted"] is False and "does not beat current model" in flat["reason"]
    assert store.current_version(MODEL_NAME) == "v0001"


def test_cli_trains_then_evaluates_on_games_it_never_saw(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PETS_STATE_DIR", str(tmp_path / "state"))
    train, unseen = split_csv(shared_data.joinpath(*DIAMOND), tmp_path)
    runner = CliRunner()
    missing = runner.invoke(main, ["esports", "model", "evaluate", "--data", str(unseen), "--json"])
    assert missing.exit_code == 1 and "no promoted esports_win model" in missing.output
    trained = runner.invoke(main, ["esports", "model", "train", "--data", str(train)])
    assert trained.exit_code == 0, trained.output
    assert trained.stdout.startswith("esports_win@v0001: promoted")
    result = runner.invoke(main, ["esports", "model", "evaluate", "--data", str(unseen), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"brier", "log_loss", "accuracy", "games", "model_version"}
    assert report["games"] == 2000 and report["model_version"] == "esports_win@v0001"
    # recomputed here from the stored model, game by game
    store = ModelStoreResource(root=str(tmp_path / "state" / "models"))
    model = wm.model_from_json(store.read(MODEL_NAME, "v0001")[0])
    games = wm.read_games(unseen)
    z = np.full(games.height, model.weights[0])
    for name, weight in zip(model.features, model.weights[1:], strict=True):
        z += weight * (games[name].to_numpy() - model.means[name]) / model.scales[name]
    p, y = 1 / (1 + np.exp(-z)), games["outcome"].to_numpy()
    assert report["brier"] == pytest.approx(float(np.mean((p - y) ** 2)))
    assert report["accuracy"] == pytest.approx(float(np.mean((p >= 0.5) == (y == 1))))
    assert report["brier"] < 0.2 and report["accuracy"] > 0.68
