"""Every data-quality check passes on good data and fails on a corrupted copy, naming the expectation."""

from __future__ import annotations

import gzip
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import msgspec
import polars as pl
import pytest

from pets.assets.markets.checks import (
    check_prices_in_range,
    check_resolved_sum,
    check_token_ids,
    outcome_rows,
)
from pets.assets.models.checks import check_beats_baseline, check_metrics_present
from pets.assets.reports.assets import PERFORMANCE_SCHEMA
from pets.assets.reports.checks import check_performance
from pets.assets.whales.checks import (
    check_outcomes_known,
    check_prices,
    check_rankings,
    check_sides,
    check_sizes,
)
from pets.pipelines import calibration as cal
from pets.pipelines import whales as w
from pets.pipelines.polymarket.gamma import parse_market
from pets.schemas.market_data import MarketInfo

pytestmark = pytest.mark.shared_data


def failed(result: dg.AssetCheckResult) -> str:
    assert result.passed is False
    assert result.metadata["failed_expectations"].value  # type: ignore[union-attr]
    return str(result.description)


@pytest.fixture(scope="module")
def markets(shared_data: Path) -> list[MarketInfo]:
    """Real Gamma markets: the first 400 of each file (legacy AMM-era and CLOB-era)."""
    out = []
    for name in ("markets_raw_2020_2022.jsonl.gz", "markets_raw_2024.jsonl.gz"):
        with gzip.open(shared_data / "polymarket" / "gamma" / name, "rt") as f:
            for i, line in enumerate(f):
                if i == 400:
                    break
                out.append(parse_market(json.loads(line)))
    return out


def test_universe_checks_pass_on_real_markets(markets: list[MarketInfo]) -> None:
    rows = outcome_rows(markets)
    for result in (check_prices_in_range(rows), check_token_ids(rows), check_resolved_sum(rows)):
        assert result.passed, result.description


def test_price_out_of_range_is_named(markets: list[MarketInfo]) -> None:
    bad = msgspec.structs.replace(markets[-1], outcome_prices=(Decimal("1.5"), Decimal("-0.5")))
    text = failed(check_prices_in_range(outcome_rows([*markets, bad])))
    assert "expect_column_values_to_be_between(outcome_price): 2 unexpected" in text


def test_duplicate_and_missing_token_ids_are_named(markets: list[MarketInfo]) -> None:
    twin = msgspec.structs.replace(markets[-1], condition_id="0xtwin")
    tokenless = msgspec.structs.replace(markets[-2], condition_id="0xopen", closed=False, token_ids=())
    text = failed(check_token_ids(outcome_rows([*markets, twin, tokenless])))
    assert "expect_column_values_to_be_unique(token_id)" in text
    assert "expect_column_values_to_be_in_set(open_market_has_token)" in text


def test_resolved_prices_not_summing_to_one_warn(shared_data: Path) -> None:
    with gzip.open(shared_data / "polymarket" / "gamma" / "markets_raw_2024.jsonl.gz", "rt") as f:
        # A real Gamma market whose outcome prices are ["1", "1"].
        raw = next(m for m in map(json.loads, f) if m["id"] == "502238")
    result = check_resolved_sum(outcome_rows([parse_market(raw)]))
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert "expect_column_values_to_be_between(price_sum): 1 unexpected, e.g. [2.0]" in failed(result)


@pytest.fixture(scope="module")
def midterms(shared_data: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    resolutions, files = w.read_resolutions_csv(shared_data / "trades" / "midterms2022_resolutions.csv")
    trades = w.read_trade_files(sorted((shared_data / "trades" / "midterms2022").glob("*.csv")), files)
    return trades, resolutions


def test_trade_checks_pass_on_real_trades(midterms: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    trades, resolutions = midterms
    for result in (
        check_sides(trades),
        check_sizes(trades),
        check_prices(trades),
        check_outcomes_known(trades, resolutions),
    ):
        assert result.passed, result.description


def test_corrupted_trades_fail_by_name(midterms: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    trades, resolutions = midterms
    bad = trades.head(3).with_columns(
        side=pl.Series(["BUY", "HOLD", "SELL"]),
        shares=pl.Series([Decimal(1), Decimal(-2), Decimal(3)], dtype=w.MONEY),
        price=pl.Series([Decimal("0.5"), Decimal("1.2"), Decimal("0.1")], dtype=w.MONEY),
        outcome=pl.Series(["Democrat", "Democrat", "Green"]),
    )
    corrupted = pl.concat([trades, bad])
    assert "expect_column_values_to_be_in_set(side): 1 unexpected, e.g. ['HOLD']" in failed(
        check_sides(corrupted)
    )
    assert "expect_column_values_to_be_between(shares): 1 unexpected" in failed(check_sizes(corrupted))
    assert "expect_column_values_to_be_between(price): 1 unexpected" in failed(check_prices(corrupted))
    warn = check_outcomes_known(corrupted, resolutions)
    assert warn.severity == dg.AssetCheckSeverity.WARN
    assert "expect_table_row_count_to_equal" in failed(warn)


def test_ranking_check(midterms: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    ranked = w.rank_wallets(*midterms).with_columns(ranking_date=pl.lit(date(2024, 12, 31)))
    assert check_rankings(ranked).passed
    swapped = ranked.with_columns(
        rank=pl.when(pl.col("rank") == 2).then(3).when(pl.col("rank") == 3).then(2).otherwise(pl.col("rank"))
    )
    assert "expect_column_values_to_be_in_set(ordered_after_previous)" in failed(check_rankings(swapped))
    doubled = pl.concat([ranked, ranked.head(1).with_columns(rank=pl.lit(ranked.height + 1, pl.Int64))])
    assert "expect_compound_columns_to_be_unique(['ranking_date', 'wallet'])" in failed(
        check_rankings(doubled)
    )


def test_model_metric_checks() -> None:
    _, metrics, _ = cal.train_and_score(cal.simulate_calibration(markets=200))
    good = cal.metrics_dict(metrics)
    assert check_metrics_present(good).passed
    assert check_beats_baseline(good).passed
    missing = {k: v for k, v in good.items() if k != "log_loss"}
    assert "expect_column_values_to_not_be_null(log_loss)" in failed(check_metrics_present(missing))
    assert "expect_column_values_to_be_between(brier)" in failed(
        check_metrics_present({**good, "brier": 1.5})
    )
    worse = {**good, "log_loss": good["baseline_log_loss"] + 0.1}
    assert "expect_column_pair_values_a_to_be_greater_than_b" in failed(check_beats_baseline(worse))
    assert "expect_column_values_to_not_be_null" in failed(check_metrics_present({}))


def test_performance_check() -> None:
    row = {
        "day": date(2025, 1, 2),
        "bot_id": "mm_1",
        "snapshots": 5,
        "trades": 3,
        "wins": 2,
        "losses": 1,
        "win_rate": Decimal("0.666667"),
        "start_equity": Decimal(1000),
        "end_equity": Decimal(1010),
        "pnl": Decimal(10),
        "roi": Decimal("0.01"),
        "sharpe": 1.2,
        "max_drawdown": Decimal("2.5"),
    }
    good = pl.DataFrame([row, {**row, "bot_id": "arb_1"}], schema=PERFORMANCE_SCHEMA)
    assert check_performance(good).passed
    bad = pl.DataFrame(
        [row, {**row, "win_rate": Decimal("1.5"), "max_drawdown": Decimal(-1)}], schema=PERFORMANCE_SCHEMA
    )
    text = failed(check_performance(bad))
    assert "expect_compound_columns_to_be_unique(['day', 'bot_id'])" in text
    assert "expect_column_values_to_be_between(win_rate)" in text
    assert "expect_column_values_to_be_between(max_drawdown)" in text
