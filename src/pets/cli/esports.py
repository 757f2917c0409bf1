"""`pets esports ...`: the esports win model (Bot 2) from the command line."""

from __future__ import annotations

from pathlib import Path

import click

from pets.cli import settings_from_env
from pets.cli._output import echo_json, echo_result, peak_rss_mb
from pets.cli.bench import bench


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


@esports.command()
@click.argument("url")
@click.argument("game_id")
@click.option(
    "--team", "teams", multiple=True, required=True, help="FEED_TEAM_ID=NAME, twice (the schedule's names)."
)
@click.option("--best-of", default=1, show_default=True, help="Series length (1, 3, 5).")
@click.option("--game-number", default=1, show_default=True, help="Which game of the series GAME_ID is.")
@click.option("--interval-s", default=1.0, show_default=True, help="Seconds between polls.")
@click.option("--behind-s", default=60, show_default=True, help="Start this far behind live, then close in.")
@click.option(
    "--stall-after-s", default=30, show_default=True, help="Report a stall after this long without a frame."
)
def feed(
    url: str, game_id: str, teams: tuple[str, ...], best_of: int, game_number: int, interval_s: float,
    behind_s: int, stall_after_s: int,
) -> None:  # fmt: skip
    """Poll a LoL live-stats feed (URL: https://feed.lolesports.com or a local one) for GAME_ID and
    produce its events to esports.event until the game ends."""
    from pets.observability.logs import set_flow
    from pets.pipelines.esports.lol_livestats import LiveStatsPoller
    from pets.pipelines.esports.publisher import publish_feed
    from pets.pipelines.polymarket.http import JsonHttpClient

    names = dict(t.split("=", 1) for t in teams if "=" in t)
    if len(names) != 2:
        raise click.ClickException("give the two teams as --team FEED_TEAM_ID=NAME --team FEED_TEAM_ID=NAME")
    set_flow("esports_feed")
    poller = LiveStatsPoller(
        JsonHttpClient(url), game_id, game_number=game_number, behind_ms=behind_s * 1000,
        stall_after_ms=stall_after_s * 1000, schedule={"teams": names, "best_of": best_of},
    )  # fmt: skip
    sent = publish_feed(settings_from_env(), poller, interval_s=interval_s)
    lags = sorted(poller.lags_ms)
    median = lags[len(lags) // 2] if lags else None
    click.echo(
        f"{sent} events from {poller.frames} frames; feed lag median {median} ms; {len(poller.errors)} errors"
    )


TIMELINES = ("lol_NA1_4729149632_match_timeline.json", "lol_ericcui_match_timeline.json")


@bench.command("esports")
@click.option("--passes", default=20, show_default=True, help="Throughput: passes over the recorded games.")
@click.option("--speed", default=300.0, show_default=True, help="Latency: game seconds served per second.")
@click.option("--lag-ms", default=500, show_default=True, help="Latency: the local feed's delay.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True)
def bench_esports(passes: int, speed: float, lag_ms: int, data_dir: Path | None, as_json: bool) -> None:
    """Frames/s through feed parsing -> events -> win model -> Bot 2, and the latency from a frame at
    the local feed server to Bot 2's intent (p50/p99), on the two recorded Riot timelines."""
    import json

    from pets.assets.environment import esports_win_data
    from pets.pipelines.esports import bench as eb
    from pets.pipelines.esports import winmodel as wm
    from pets.pipelines.esports.riot_timeline import replay
    from pets.pipelines.forecasts import ModelStoreSource
    from pets.schemas.config import load_config

    settings = settings_from_env()
    data_dir = data_dir or settings.shared_data_dir
    paths = [data_dir / "esports" / name for name in TIMELINES]
    if not all(p.exists() for p in paths):
        raise click.ClickException(
            f"{data_dir / 'esports'}: the recorded timelines are missing ({', '.join(TIMELINES)})"
        )
    games = [list(replay(json.loads(p.read_text()), 1_700_000_000_000)) for p in paths]
    store = ModelStoreSource(settings.state_dir / "models", wm.MODEL_NAME)
    version = store.current_version()
    if version is not None:
        model, source = wm.model_from_json((store.folder / version / "model.json").read_bytes()), version
    else:
        model, _, _ = wm.train_and_score(wm.read_games(Path(esports_win_data(settings))))
        source = "fitted for the bench (none promoted)"
    config = load_config(settings.config_dir)
    bot = next(b for b in config.bots if b.strategy == "esports_live")
    venue = config.system.venue
    result = {
        "input": ", ".join(TIMELINES),
        "model": source,
        **{f"throughput_{k}": v for k, v in eb.throughput(games, model, bot, venue, passes).items()},
        **eb.latency(games, model, bot, venue, speed=speed, lag_ms=lag_ms),
        "peak_rss_mb": peak_rss_mb(),
    }
    echo_result(result, as_json)


commands = [esports]
