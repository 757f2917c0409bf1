"""`pets esports ...`: the esports win model (Bot 2) from the command line."""

from __future__ import annotations

from pathlib import Path

import click

from pets.cli import settings_from_env
from pets.cli._output import echo_json


@click.group()
def esports() -> None:
    """Esports & live events (Bot 2): the win-probability model."""


@esports.group()
def model() -> None:
    """The esports_win_model: train and promote, evaluate the promoted version."""


@model.command()
@click.option(
    "--data",
    "data_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CSV of games at minute 10 (default: the shared lol_diamond_ranked_10min.csv).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new version's metrics as JSON.")
def train(data_file: Path | None, as_json: bool) -> None:
    """Train, evaluate on the latest games and promote when better (the esports_win_model asset's code)."""
    from pets.assets.environment import esports_win_data
    from pets.assets.models.esports import model_version, train_win_model
    from pets.assets.resources import ModelStoreResource
    from pets.pipelines.esports.winmodel import WinDataError

    settings = settings_from_env()
    path = str(data_file) if data_file is not None else esports_win_data(settings)
    if not Path(path).is_file():
        raise click.ClickException(f"{path}: no such file (pass --data FILE.csv)")
    store = ModelStoreResource(root=str(settings.state_dir / "models"))
    try:
        done = train_win_model(store, path)
    except WinDataError as exc:
        raise click.ClickException(str(exc)) from None
    m = done.metrics
    if as_json:
        echo_json(
            {
                "model_version": model_version(done.record.version),
                "promoted": done.promoted,
                "reason": done.reason,
                "brier": m.brier,
                "log_loss": m.log_loss,
                "accuracy": m.accuracy,
                "baseline_brier": m.baseline_brier,
                "baseline_log_loss": m.baseline_log_loss,
                "baseline_accuracy": m.baseline_accuracy,
                "train_games": m.train_games,
                "validation_games": m.validation_games,
            }
        )
        return
    verdict = "promoted" if done.promoted else "not promoted"
    click.echo(
        f"{model_version(done.record.version)}: {verdict} ({done.reason})\n"
        f"validation ({m.validation_games} latest games, trained on {m.train_games}): "
        f"brier {m.brier:.4f} log loss {m.log_loss:.4f} accuracy {m.accuracy:.3f}; "
        f"naive baseline: brier {m.baseline_brier:.4f} log loss {m.baseline_log_loss:.4f} "
        f"accuracy {m.baseline_accuracy:.3f}"
    )


@model.command()
@click.option(
    "--data",
    "data_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="CSV with the same columns (games the model never saw).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print brier, log_loss, accuracy, games, model_version."
)
def evaluate(data_file: Path, as_json: bool) -> None:
    """Score the promoted model on every game of a CSV."""
    from pets.assets.models.esports import NoPromotedModel, evaluate_promoted
    from pets.assets.resources import ModelStoreResource
    from pets.pipelines.esports.winmodel import WinDataError

    store = ModelStoreResource(root=str(settings_from_env().state_dir / "models"))
    try:
        result = evaluate_promoted(store, str(data_file))
    except (NoPromotedModel, WinDataError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json(result)
    else:
        click.echo(
            f"{result['model_version']} on {result['games']} games: brier {result['brier']:.4f} "
            f"log loss {result['log_loss']:.4f} accuracy {result['accuracy']:.3f}"
        )


commands = [esports]
