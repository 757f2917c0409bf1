"""The esports win model (Bot 2): trained, scored and promoted by the same code from the Dagster asset
`esports_win_model` and from `pets esports model train`; `evaluate_promoted` scores the promoted
version on games it never saw (`pets esports model evaluate`)."""

from pathlib import Path
from typing import Any, NamedTuple

import dagster as dg
import msgspec
from pydantic import Field

from pets.assets.environment import esports_win_data
from pets.assets.resources import ModelStoreResource, ModelVersion
from pets.pipelines.esports import winmodel as wm

MODEL_NAME = wm.MODEL_NAME


class WinTraining(NamedTuple):
    record: ModelVersion
    metrics: wm.WinMetrics
    promoted: bool
    reason: str
    incumbent: str | None
    model: wm.WinModel


def model_version(version: str) -> str:
    """How signals and reports name a version of the model."""
    return f"{MODEL_NAME}@{version}"


def train_win_model(
    store: ModelStoreResource, data_file: str, *, validation_share: float = 0.25, l2: float = 1.0
) -> WinTraining:
    """Fit on the earlier games, score on the later ones, save a new version; promote it only when its
    log loss on those games beats the promoted version's (with none promoted: the naive baseline's)."""
    data = wm.read_games(Path(data_file))
    model, metrics, validation = wm.train_and_score(data, validation_share=validation_share, l2=l2)
    current = store.current_version(MODEL_NAME)
    incumbent_log_loss = None
    if current is not None:
        raw, _ = store.read(MODEL_NAME, current)
        _, incumbent_log_loss, _ = wm.score(wm.model_from_json(raw), validation)
    promote, reason = wm.promotion_decision(metrics, incumbent_log_loss)
    record = store.save(
        MODEL_NAME,
        wm.model_to_json(model),
        {
            **msgspec.structs.asdict(metrics),
            "data": data_file,
            "incumbent_version": current,
            "incumbent_log_loss": incumbent_log_loss,
        },
        promote=promote,
        reason=reason,
    )
    return WinTraining(record, metrics, promote, reason, current, model)


class NoPromotedModel(LookupError):
    """No version of the esports win model has been promoted."""


def evaluate_promoted(store: ModelStoreResource, data_file: str) -> dict[str, Any]:
    """Brier, log loss and accuracy of the promoted version on every game of `data_file`."""
    current = store.current_version(MODEL_NAME)
    if current is None:
        raise NoPromotedModel(
            f"no promoted {MODEL_NAME} model in {store.root}: run `pets esports model train`"
        )
    raw, _ = store.read(MODEL_NAME, current)
    games = wm.read_games(Path(data_file))
    brier, log_loss, accuracy = wm.score(wm.model_from_json(raw), games)
    return {
        "brier": brier,
        "log_loss": log_loss,
        "accuracy": accuracy,
        "games": games.height,
        "model_version": model_version(current),
    }


class EsportsWinConfig(dg.Config):
    data_file: str = Field(
        default="",
        description="CSV of games at minute 10 (the diamond-ranked columns); empty: the shared data set.",
    )
    validation_share: float = Field(
        default=0.25, description="Share of the latest games kept for validation."
    )
    l2: float = Field(default=1.0, description="L2 penalty of the logistic regression.")


@dg.asset(group_name="models", kinds={"numpy", "polars"})
def esports_win_model(
    context: dg.AssetExecutionContext, config: EsportsWinConfig, model_store: ModelStoreResource
) -> dg.MaterializeResult:
    """P(team wins a LoL game | game state); promoted only if it beats the current one."""
    data_file = config.data_file or esports_win_data()
    done = train_win_model(model_store, data_file, validation_share=config.validation_share, l2=config.l2)
    m = done.metrics
    context.log.info(
        f"{MODEL_NAME} {done.record.version}: "
        f"{'promoted' if done.promoted else 'kept ' + str(done.incumbent)}: {done.reason}"
    )
    return dg.MaterializeResult(
        metadata={
            "version": done.record.version,
            "promoted": done.promoted,
            "reason": done.reason,
            "source": data_file,
            "brier": m.brier,
            "log_loss": m.log_loss,
            "accuracy": m.accuracy,
            "baseline_brier": m.baseline_brier,
            "baseline_log_loss": m.baseline_log_loss,
            "baseline_accuracy": m.baseline_accuracy,
            "train_games": m.train_games,
            "validation_games": m.validation_games,
            "features": ", ".join(done.model.features),
            "path": dg.MetadataValue.path(done.record.path),
        }
    )


WIN_METRICS = ("brier", "log_loss", "accuracy", "baseline_log_loss", "train_games", "validation_games")


@dg.asset_check(
    asset=esports_win_model,
    name="esports_win_metrics_present",
    blocking=True,
    description="The newest version has Brier, log loss and accuracy in range, and games on both sides.",
)
def esports_win_metrics_present(model_store: ModelStoreResource) -> dg.AssetCheckResult:
    import great_expectations as gx
    import polars as pl

    from pets.assets.quality import gx_check

    versions = model_store.versions(MODEL_NAME)
    stored: dict[str, Any] = (
        model_store.read(MODEL_NAME, versions[-1])[1].get("metrics", {}) if versions else {}
    )
    frame = pl.DataFrame(
        [{name: stored.get(name) for name in WIN_METRICS}], schema=dict.fromkeys(WIN_METRICS, pl.Float64)
    )
    expectations: list[Any] = [gx.expectations.ExpectTableRowCountToEqual(value=1)]
    for name, low, high in (
        ("brier", 0, 1),
        ("accuracy", 0, 1),
        ("log_loss", 0, 50),
        ("baseline_log_loss", 0, 50),
    ):
        expectations.append(gx.expectations.ExpectColumnValuesToNotBeNull(column=name))
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeBetween(column=name, min_value=low, max_value=high)
        )
    for name in ("train_games", "validation_games"):
        expectations.append(gx.expectations.ExpectColumnValuesToNotBeNull(column=name))
        expectations.append(gx.expectations.ExpectColumnValuesToBeBetween(column=name, min_value=1))
    return gx_check(
        frame,
        expectations,
        suite="esports_win_metrics_present",
        check_name="esports_win_metrics_present",
        asset_key=esports_win_model.key,
    )
