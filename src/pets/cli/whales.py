"""`pets whales rank` and `pets bench rankings`: the whale ranking of the Dagster asset, from files."""

from __future__ import annotations

import time
from pathlib import Path

import click

from pets.cli import settings_from_env
from pets.cli._output import echo_json, echo_result, peak_rss_mb
from pets.cli.bench import bench


@click.group()
def whales() -> None:
    """Whale wallets: rank by realized P&L over resolved markets."""


@whales.command("rank")
@click.option(
    "--trades",
    "trade_paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trades file (midterms CSV, Data-API export CSV or /trades JSON); repeat or use a glob.",
)
@click.argument("more_trades", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--resolutions",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV with gamma_market_id|market, outcomes (A|B), winning_outcome[, file].",
)
@click.option("--min-trades", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--top", default=None, type=click.IntRange(min=1), help="Print only the best N wallets.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (decimals as strings).")
def rank(
    trade_paths: tuple[Path, ...],
    more_trades: tuple[Path, ...],
    resolutions: Path,
    min_trades: int,
    top: int | None,
    as_json: bool,
) -> None:
    """Rank wallets with at least --min-trades trades by P&L, then volume, then address."""
    from pets.cli._progress import Progress
    from pets.pipelines import whales as w

    progress = Progress("rank: reading trades", unit="files", enabled=not as_json)
    try:
        resolution_rows, market_of_file = w.read_resolutions_csv(resolutions)
        read = w.read_trades_checked([*trade_paths, *more_trades], market_of_file, on_file=progress.update)
        progress.update(len(trade_paths) + len(more_trades))
        known = w.split_unknown_outcomes(read.trades, resolution_rows)
        if read.rejected or known.rejected:
            raise w.rejection_error([*read.rejected, *known.rejected])
    except w.TradeInputError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        progress.close()
    trades = known.trades
    records = w.ranking_records(w.rank_wallets(trades, resolution_rows, min_trades=min_trades), top)
    if as_json:
        echo_json(records)
        return
    click.echo(f"{'rank':>5}  {'wallet':<42}  {'pnl':>14}  {'volume':>14}  trades  markets  win_rate  roi")
    for r in records:
        click.echo(
            f"{r['rank']:>5}  {r['wallet']:<42}  {r['pnl']:>14}  {r['volume']:>14}  {r['trades']:>6}  "
            f"{r['markets']:>7}  {r['win_rate']:>8}  {r['roi']}"
        )


@bench.command("rankings")
@click.option("--replicate", default=100, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Shared data folder (default: PETS_SHARED_DATA, else ../shared/data); simulated trades when "
    "it has no midterms trades.",
)
@click.option("--min-trades", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True)
def bench_rankings(replicate: int, data_dir: Path | None, min_trades: int, as_json: bool) -> None:
    """Wallets ranked per second over the midterms trades replicated N times with fresh wallet ids."""
    from pets.pipelines import whales as w

    data = data_dir or settings_from_env().shared_data_dir
    midterms = data / "trades" / "midterms2022"
    started = time.perf_counter()
    if midterms.is_dir():
        resolutions, market_of_file = w.read_resolutions_csv(data / "trades" / "midterms2022_resolutions.csv")
        base = w.read_trade_files(sorted(midterms.glob("*.csv")), market_of_file)
        source = str(midterms)
    else:
        base, resolutions = w.simulate_trades()
        source = "simulated (seed 7): no recorded trades found at " + str(midterms)
    trades = w.replicate_trades(base, replicate)
    load_s = time.perf_counter() - started
    wallets = trades["wallet"].n_unique()
    started = time.perf_counter()
    ranked = w.rank_wallets(trades, resolutions, min_trades=min_trades)
    rank_s = time.perf_counter() - started
    result = {
        "source": source,
        "replicate": replicate,
        "trades": trades.height,
        "wallets": wallets,
        "ranked_wallets": ranked.height,
        "load_s": round(load_s, 3),
        "rank_s": round(rank_s, 3),
        "wallets_per_s": round(wallets / rank_s),
        "trades_per_s": round(trades.height / rank_s),
        "peak_rss_mb": peak_rss_mb(),
    }
    echo_result(result, as_json)


commands = [whales]
