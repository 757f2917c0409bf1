"""`pets backtest value`: Bots 9 and 10 walk forward over real resolved markets (docs/bots.md)."""

from __future__ import annotations

from pathlib import Path

import click

from pets.cli import settings_from_env
from pets.cli._output import echo_json

VALUE_STRATEGIES = ("kelly_value_betting", "long_term_value")


@click.group()
def backtest() -> None:
    """Backtests of the bots on recorded data."""


@backtest.command()
@click.option(
    "--bot", "bot_id", type=click.Choice(["bot_09", "bot_10"]), required=True, help="The value bot."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The shared data folder (calibration/, polymarket/gamma/); default PETS_SHARED_DATA.",
)
@click.option(
    "--config-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Config directory (default: the project's config/).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object (decimals as strings).")
def value(bot_id: str, data_dir: Path | None, config_dir: Path | None, as_json: bool) -> None:
    """Walk-forward backtest of Bot 9 or 10 with a monthly retrained calibration model, and a
    buy-at-price baseline."""
    from pets.cli._progress import Progress
    from pets.pipelines.value_backtest import load_value_data, run_value_backtest
    from pets.schemas.config import InvalidConfigError, load_config

    settings = settings_from_env()
    data_dir = data_dir or settings.shared_data_dir
    if not (data_dir / "calibration").is_dir():
        raise click.ClickException(
            f"{data_dir / 'calibration'}: no calibration data (set --data-dir or PETS_SHARED_DATA)"
        )
    try:
        config = load_config(config_dir or settings.config_dir)
    except InvalidConfigError as exc:
        raise click.ClickException(str(exc)) from None
    bot = next((b for b in config.bots if b.id == bot_id and b.strategy in VALUE_STRATEGIES), None)
    if bot is None:
        raise click.ClickException(f"{bot_id}: no bot file with strategy {' or '.join(VALUE_STRATEGIES)}")
    progress = Progress(f"backtest {bot_id}", unit="events", enabled=not as_json)
    try:
        data = load_value_data(data_dir)
        report = run_value_backtest(data, bot, config.system.venue, progress=progress.update)
    finally:
        progress.close()
    if as_json:
        echo_json(report)
        return
    click.echo(
        f"{report.bot} ({report.strategy}): {report.markets} markets, {report.rows} priced rows, "
        f"{report.retrains} monthly models (first {report.first_model})"
    )
    click.echo(
        f"{'':10s} {'trades':>7s} {'positions':>9s} {'hit rate':>8s} {'cost':>10s} {'P&L':>10s} {'ROI':>8s}"
    )
    for name, side in (("bot", report.bot_result), ("baseline", report.baseline)):
        click.echo(
            f"{name:10s} {side.trades:7d} {side.positions:9d} {side.hit_rate:8} {side.cost:10} {side.pnl:10} "
            f"{side.roi:8}"
        )
    click.echo(
        f"Brier on {report.brier.rows} rows: model {report.brier.model}, price {report.brier.price}; "
        f"final cash {report.final_cash}"
    )
    click.echo(f"assumptions: {report.assumptions}")
    for t in report.trades:
        click.echo(
            f"  {t.time[:10]} {t.side:4s} {t.token:3s} {t.size:>9} @ {t.price:<6} p={t.probability} "
            f"{t.model_version} {'won' if t.won else 'lost'}  {t.market[:70]}"
        )


commands = [backtest]
