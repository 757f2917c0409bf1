"""Report metrics: Sharpe, drawdown, win rate, denials by reason, breaker events."""

from __future__ import annotations

import math
from decimal import Decimal

from pets.execution.metrics import build_report, format_report, max_drawdown, sharpe
from pets.schemas.control import RiskAlert
from pets.schemas.orders import PnlSnapshot

D = Decimal
DAY = 86_400 * 10**9


def test_sharpe_of_daily_returns_annualized_by_sqrt_365() -> None:
    returns = [0.01, -0.01, 0.02]  # equity 100 -> 101 -> 100 -> 102 on capital 100
    mean = sum(returns) / 3
    stdev = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    expected = mean / stdev * math.sqrt(365)
    got = sharpe([D(100), D(101), D(100), D(102)], D(100), [0, DAY, 2 * DAY, 3 * DAY])
    assert math.isclose(got, expected, rel_tol=1e-12)
    assert sharpe([D(100)] * 5, D(100), [0, 1, 2, 3, 4]) == 0.0  # flat: undefined, reported as 0


def test_max_drawdown_is_the_largest_fall_from_a_peak() -> None:
    assert max_drawdown([D(100), D(120), D(90), D(130), D(117)]) == 0.25  # 120 -> 90
    assert max_drawdown([D(1), D(2), D(3)]) == 0.0


def _snap(bot: str, ts: int, equity: str, *, trades: int = 0, wins: int = 0, losses: int = 0) -> PnlSnapshot:
    z = D(0)
    return PnlSnapshot(
        bot_id=bot,
        ts_ns=ts,
        cash=D(equity),
        equity=D(equity),
        realized_pnl=z,
        unrealized_pnl=z,
        fees=z,
        rebates=z,
        exposure=z,
        open_orders=0,
        trades=trades,
        wins=wins,
        losses=losses,
        max_drawdown=z,
    )


def test_report_per_bot_from_snapshots_denials_and_alerts() -> None:
    snaps = [
        _snap("bot_01", 0, "1200"),
        _snap("portfolio", 0, "10000"),
        _snap("bot_01", DAY, "1260", trades=6, wins=3, losses=1),
        _snap("portfolio", DAY, "10060"),
    ]
    alert = RiskAlert(
        alert_id="a",
        kind="circuit_breaker",
        bot_id="bot_05",
        rule="consecutive_losses",
        message="m",
        severity="warning",
        ts_ns=1,
    )
    halt = RiskAlert(
        alert_id="b",
        kind="emergency_halt",
        bot_id="*",
        rule="operator_halt",
        message="m",
        severity="critical",
        ts_ns=2,
    )
    report = build_report(
        ["bot_01", "bot_05"],
        {"bot_01": D(1200), "bot_05": D(1500)},
        D(10_000),
        snaps,
        [("bot_05", "rate_limit"), ("bot_05", "zone"), ("bot_05", "rate_limit")],
        [alert, halt],
    )
    assert list(report) == ["bot_01", "bot_05", "portfolio"]
    one = report["bot_01"]
    assert (one.trades, one.round_trips, one.win_rate, one.pnl, one.roi) == (6, 4, 0.75, D(60), 0.05)
    five = report["bot_05"]
    assert five.trades == 0 and five.pnl == 0 and five.equity == D(1500)
    assert five.denials_by_reason == {"rate_limit": 2, "zone": 1} and five.breaker_events == 1
    assert report["portfolio"].breaker_events == 1 and report["portfolio"].pnl == D(60)
    text = format_report(report, {"bot_01": "market_rebalancing_arb"})
    assert "market_rebalancing_arb" in text and "rate_limit 2" in text
