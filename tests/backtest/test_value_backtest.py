"""The walk-forward value backtest: the leakage check, hand-checkable P&L on a synthetic set, and the real
resolved markets when the shared data is there."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import ROUND_FLOOR
from decimal import Decimal as D
from pathlib import Path

import msgspec
import polars as pl
import pytest
from bot_factories import VENUE
from value_factories import config_of, constant_model, cost, kelly_params, ltv_params

from pets.pipelines.calibration import CALIBRATION_SCHEMA
from pets.pipelines.value_backtest import (
    LeakageError,
    assert_no_leak,
    load_value_data,
    month_start,
    run_value_backtest,
)
from pets.schemas.config import load_config
from pets.settings import Settings

DAY = 86_400
CENT = D("0.01")


def ts(*date: int) -> int:
    return int(datetime(*date, tzinfo=UTC).timestamp())


def frame(rows: list[tuple[str, int, float, int, int]]) -> pl.DataFrame:
    """(market, horizon_s, price, outcome, resolved_s) rows in the calibration schema."""
    data = pl.DataFrame(
        {
            "market": [r[0] for r in rows],
            "category": ["election"] * len(rows),
            "horizon_s": [r[1] for r in rows],
            "price": [r[2] for r in rows],
            "volume": [1000.0] * len(rows),
            "outcome": [r[3] for r in rows],
            "resolved_s": [r[4] for r in rows],
        },
        schema=CALIBRATION_SCHEMA,
    )
    return data.with_columns(tick=pl.lit(None, pl.String), end_s=pl.lit(None, pl.Int64))


# two markets resolved in January train the first model (priced 0.50: outside zones 1-2, never traded);
# A (YES 0.30, wins) trades on 1 March, B (YES 0.20, loses) on 31 March after A has paid out.
TRAIN = [("e:train1", DAY, 0.50, 1, ts(2024, 1, 10)), ("e:train2", DAY, 0.50, 0, ts(2024, 1, 12))]
SYNTHETIC = frame([
    *TRAIN,
    ("e:A", 30 * DAY, 0.30, 1, ts(2024, 3, 31)),
    ("e:B", 30 * DAY, 0.20, 0, ts(2024, 4, 30)),
])  # fmt: skip


def floor(value: D, step: D) -> D:
    return value.quantize(step, rounding=ROUND_FLOOR)


def quarter_kelly(p: D, ask: D, bankroll: D) -> D:
    c = cost(ask)
    return floor(D("0.25") * (p - c) / (1 - c) * bankroll / c, CENT)


def fee(size: D, price: D) -> D:
    return floor(size * D("0.03") * price * (1 - price), D("0.000001"))


def test_the_leakage_check_catches_a_market_resolved_after_the_trade() -> None:
    assert_no_leak([ts(2024, 2, 1), ts(2024, 2, 29)], ts(2024, 3, 1), "v")  # all before
    with pytest.raises(LeakageError, match="trained on a market resolved at"):
        assert_no_leak([ts(2024, 2, 1), ts(2024, 3, 1)], ts(2024, 3, 1), "v")  # resolved at the trade
    assert month_start(ts(2024, 3, 17) + 3_600) == ts(2024, 3, 1)


def test_the_backtest_refuses_a_planted_leak() -> None:
    # a cut a year after the trade trains on markets that resolve after it: the run must stop
    config = config_of("kelly_value_betting", kelly_params())
    with pytest.raises(LeakageError):
        run_value_backtest(
            SYNTHETIC, config, VENUE, cut_of=lambda t: t + 365 * DAY, min_train_rows=1,
            train=lambda _: constant_model(0.40),
        )  # fmt: skip


def test_synthetic_walk_forward_pnl_by_hand() -> None:
    config = config_of("kelly_value_betting", kelly_params())
    report = run_value_backtest(
        SYNTHETIC, config, VENUE, min_train_rows=1, train=lambda _: constant_model(0.40)
    )

    # A: one-tick book 0.30 / 0.31; c = 0.31 + 0.03 x 0.31 x 0.69; quarter Kelly of the 1000 bankroll
    size_a = quarter_kelly(D("0.4"), D("0.31"), D(1000))
    cash = D(1000) - size_a * D("0.31") - fee(size_a, D("0.31")) + size_a  # A wins: 1 per share
    # B on 31 March: A has paid out, the bankroll is the cash
    size_b = quarter_kelly(D("0.4"), D("0.21"), cash)
    cash -= size_b * D("0.21") + fee(size_b, D("0.21"))  # B loses
    assert [(t.market, t.side, t.token, t.price, t.size, t.model_version) for t in report.trades] == [
        ("e:A", "BUY", "YES", D("0.31"), size_a, "wf-2024-03-01"),
        ("e:B", "BUY", "YES", D("0.21"), size_b, "wf-2024-03-01"),
    ]
    side = report.bot_result
    assert (side.trades, side.positions, side.wins, side.hit_rate) == (2, 2, 1, D("0.5"))
    assert side.pnl == (cash - 1000).quantize(CENT)
    assert report.final_cash == cash.quantize(CENT)
    spent = size_a * D("0.31") + fee(size_a, D("0.31")) + size_b * D("0.21") + fee(size_b, D("0.21"))
    assert side.roi == ((cash - 1000) / spent).quantize(D("0.0001"))

    # baseline: 10 pUSD (min_position_usdc) of each token whose ask is in [0, 0.40): YES of A and of B
    base_a, base_b = floor(D(10) / D("0.31"), CENT), floor(D(10) / D("0.21"), CENT)
    base_pnl = base_a * D("0.69") - fee(base_a, D("0.31")) - base_b * D("0.21") - fee(base_b, D("0.21"))
    assert (report.baseline.trades, report.baseline.wins) == (2, 1)
    assert report.baseline.pnl == base_pnl.quantize(CENT)
    # Brier on the rows a model existed for (A and B): the model says 0.4, the price 0.3 and 0.2
    assert report.brier.rows == 2
    assert float(report.brier.model) == pytest.approx(((0.4 - 1) ** 2 + 0.4**2) / 2, abs=1e-5)
    assert float(report.brier.price) == pytest.approx(((0.3 - 1) ** 2 + 0.2**2) / 2, abs=1e-5)
    assert report.retrains == 1  # A and B trade in March: one cut (resolutions do not retrain)


def test_long_term_value_refuses_a_slow_edge_in_the_backtest() -> None:
    # B's edge over 30 days clears 20% a year; priced 300 days out the same edge would not:
    # (0.4 - 0.2163) / 0.2163 x 365 / 300 = 1.03 still clears, so demand 150% a year
    slow = frame([*TRAIN, ("e:C", 300 * DAY, 0.20, 0, ts(2025, 2, 1))])
    config = config_of("long_term_value", ltv_params(min_annual_return=D("1.5")))
    report = run_value_backtest(slow, config, VENUE, min_train_rows=1, train=lambda _: constant_model(0.40))
    assert report.trades == []
    fast = frame([*TRAIN, ("e:C", 30 * DAY, 0.20, 0, ts(2024, 3, 31))])
    assert (
        len(
            run_value_backtest(
                fast, config, VENUE, min_train_rows=1, train=lambda _: constant_model(0.40)
            ).trades
        )
        == 1
    )


@pytest.mark.parametrize("bot_id", ["bot_09", "bot_10"])
def test_real_resolved_markets(shared_data: Path, bot_id: str) -> None:
    if not (shared_data / "calibration").is_dir():
        pytest.skip(f"{shared_data / 'calibration'} is absent (shared data not available)")
    config = load_config(Settings().config_dir)
    bot = next(
        b for b in config.bots if b.id == bot_id and b.strategy in ("kelly_value_betting", "long_term_value")
    )
    started = time.perf_counter()
    report = run_value_backtest(load_value_data(shared_data), bot, config.system.venue)
    assert time.perf_counter() - started < 60
    assert report.markets > 1000 and report.retrains > 12 and report.brier.rows > 2000
    params = bot.params
    assert report.final_cash == (params.bankroll_usdc + report.bot_result.pnl).quantize(CENT)
    encoded = msgspec.json.decode(msgspec.json.encode(report))
    assert isinstance(encoded["bot_result"]["pnl"], str) and isinstance(encoded["brier"]["model"], str)
