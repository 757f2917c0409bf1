"""`pets news match`: news headlines matched to markets (the flow's matcher, docs/news.md);
`pets bench news`: its speed."""

from __future__ import annotations

import csv
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from pets.cli import settings_from_env
from pets.cli._output import echo_json, echo_result
from pets.cli.bench import bench


@click.group()
def news() -> None:
    """News items: matching to markets."""


MARKETS_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@news.command()
@click.option("--markets", "markets_file", required=True, type=MARKETS_FILE,
              help="A Gamma market dump (JSON lines, optionally .gz, or one JSON list).")  # fmt: skip
@click.option("--headline", default=None, help="One headline.")
@click.option("--headlines", "headlines_file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A CSV with a `headline` column (and optionally `first_seen_utc`).")  # fmt: skip
@click.option("--top", default=5, show_default=True, type=click.IntRange(min=1), help="Markets per headline.")
@click.option("--at", "at", default=None, help="ISO time (UTC): only markets open then count.")
@click.option("--json", "as_json", is_flag=True, help="JSON output (the only format).")
def match(
    markets_file: Path,
    headline: str | None,
    headlines_file: Path | None,
    top: int,
    at: str | None,
    as_json: bool,
) -> None:
    """The top-K open markets for a headline (empty below the score threshold)."""
    from pets.pipelines.news.matching import MarketIndex, parse_time_ms

    if (headline is None) == (headlines_file is None):
        raise click.UsageError("give exactly one of --headline and --headlines")
    try:
        at_ms = parse_time_ms(at) if at else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    index = MarketIndex.from_gamma(_gamma_markets(markets_file))
    if headline is not None:
        echo_json([m.as_json() for m in index.match(headline, top, at_ms)])
        return
    assert headlines_file is not None
    with headlines_file.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "headline" not in reader.fieldnames:
            raise click.BadParameter("the CSV has no `headline` column", param_hint="--headlines")
        for row in reader:
            seen = row.get("first_seen_utc")
            when = parse_time_ms(seen) if seen else at_ms
            text = row["headline"]
            echo_json({"headline": text, "matches": [m.as_json() for m in index.match(text, top, when)]})


@bench.command("news")
@click.option("--markets", "markets_file", required=True, type=MARKETS_FILE)
@click.option("--headlines", "headlines_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A CSV with `headline` (and `first_seen_utc`) columns.")  # fmt: skip
@click.option("--limit", default=5000, show_default=True, help="Headlines matched (cycled).")
@click.option("--latency-items", default=200, show_default=True,
              help="Headlines sent through the local feed and LLM servers to Bot 4 (0: skip).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
def bench_news(
    markets_file: Path, headlines_file: Path, limit: int, latency_items: int, as_json: bool
) -> None:
    """Headlines matched per second against a market dump (each at its own time when given), and the
    latency from an item in a feed to Bot 4's intent (local feed and LLM servers, in process)."""
    from pets.pipelines.news.matching import MarketIndex, parse_time_ms

    dump = _gamma_markets(markets_file)
    started = time.perf_counter()
    index = MarketIndex.from_gamma(dump)
    build_s = time.perf_counter() - started
    with headlines_file.open(newline="", encoding="utf-8") as f:
        rows = [(r["headline"], parse_time_ms(r["first_seen_utc"]) if r.get("first_seen_utc") else None)
                for r in csv.DictReader(f)]  # fmt: skip
    items = [rows[i % len(rows)] for i in range(limit)]
    matched = 0
    started = time.perf_counter()
    for text, at_ms in items:
        matched += bool(index.match(text, 5, at_ms))
    elapsed = time.perf_counter() - started
    echo_result({
        "markets": len(index.markets),
        "index_build_s": round(build_s, 2),
        "items": len(items),
        "items_with_a_match": matched,
        "items_per_s": round(len(items) / elapsed, 1),
        "mean_latency_ms": round(elapsed / len(items) * 1000, 3),
        **_latency(dump, [text for text, _ in rows], latency_items),
    }, as_json)  # fmt: skip


def _gamma_markets(path: Path) -> list[Mapping[str, Any]]:
    """The dump's market objects, read once; a file that is no dump is one clear error."""
    from pets.pipelines.news.matching import read_gamma_dump

    try:
        return list(read_gamma_dump(path))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--markets") from None


def _latency(dump: list[Mapping[str, Any]], headlines: list[str], count: int) -> dict[str, object]:
    if count <= 0:
        return {}
    from pets.pipelines.news.bench import feed_to_intent, open_markets
    from pets.schemas.config import load_config

    config = load_config(settings_from_env().config_dir)
    result = feed_to_intent(open_markets(dump), headlines[:count], config)
    return {f"latency_{k}": v for k, v in result.items()}


commands = [news]
