"""Report metrics: Sharpe, drawdown, win rate, denials by reason, breaker events."""

from __future__ import annotations

import math
from decimal import Decimal

import msgspec

from pets.execution.metrics import (
    Markouts,
    build_report,
    format_report,
    max_drawdown,
    sample_equity,
    sharpe_sortino,
)
from pets.schemas.control import RiskAlert
from pets.schemas.orders import ExecutionReport, PnlSnapshot, Side

D = Decimal
DAY = 86_400 * 10**9
MINUTE = 60 * 10**9


def alternating(n: int) -> list[Decimal]:
    """Equity from 100, up 2% then down 1%, n returns: returns 0.02, -0.01, 0.02, ..."""
    curve = [D(100)]
    for i in range(n):
        curve.append(curve[-1] * (D("1.02") if i % 2 == 0 else D("0.99")))
    return curve


def test_sharpe_and_sortino_of_a_worked_curve() -> None:
    # 30 returns, 15 x 0.02 and 15 x -0.01: mean 0.005, sample stdev 0.015 x sqrt(30/29), downside
    # deviation sqrt(15 x 0.0001 / 30) = sqrt(0.00005). 15-minute intervals: 365 x 96 = 35,040 a year.
    # Sharpe = 0.005 / (0.015 x 1.0170953) x sqrt(35040) = 0.3277310 x 187.18974 = 61.3474
    # Sortino = 0.005 / 0.0070710678 x 187.18974 = 132.3629
    sharpe, sortino = sharpe_sortino(alternating(30))
    assert sharpe is not None and math.isclose(sharpe, 61.3474, rel_tol=1e-5)
    assert sortino is not None and math.isclose(sortino, 132.3629, rel_tol=1e-5)


def test_sharpe_is_not_available_under_30_intervals_or_without_dispersion() -> None:
    assert sharpe_sortino(alternating(29)) == (None, None)
    assert sharpe_sortino([D(100)] * 40) == (None, None)  # flat
    sharpe, sortino = sharpe_sortino([D(100) + i for i in range(40)])  # never down: no downside
    assert sharpe is not None and sortino is None


def test_a_ten_minute_run_has_no_sharpe() -> None:
    # snapshots every 10 s for 10 minutes: 61 points, but only one 15-minute sample
    ts = [i * 10 * 10**9 for i in range(61)]
    equity = [D(1000) + (i % 3) for i in range(61)]
    assert sample_equity(ts, equity) == [D(1000)]
    assert sharpe_sortino(sample_equity(ts, equity)) == (None, None)


def test_samples_take_the_latest_value_at_or_before_each_time() -> None:
    ts = [0, 5 * MINUTE, 15 * MINUTE, 40 * MINUTE]
    equity = [D(1), D(2), D(3), D(4)]
    # sample times 0, 15, 30 min (45 is past the last point): values 1, 3 (at 15), 3 (held)
    assert sample_equity(ts, equity) == [D(1), D(3), D(3)]


def test_max_drawdown_is_the_largest_fall_from_a_peak() -> None:
    assert max_drawdown([D(100), D(120), D(90), D(130), D(117)]) == D("0.25")  # 120 -> 90
    assert max_drawdown([D(1), D(2), D(3)]) == 0
    # every fall is 1% of the peak before it (to Decimal's 28 digits)
    assert abs(max_drawdown(alternating(30)) - D("0.01")) < D("1e-25")


def _fill(
    side: Side, qty: str, px: str, coid: str = "o1", bot: str = "bot_05", final: bool = True
) -> ExecutionReport:
    return ExecutionReport(
        report_id=f"{coid}-{side}-{qty}", client_order_id=coid, venue_order_id=None, bot_id=bot,
        market="m1", asset_id="yes1", side=side, kind="fill" if final else "partial_fill",
        order_price=D(px), order_size=D(qty), last_qty=D(qty), last_px=D(px),
        leaves_qty=D(0) if final else D(1),
        ts_ns=0, source_ts_ms=0,
    )  # fmt: skip


def test_markouts_and_edge_quoted_of_a_worked_fill() -> None:
    marks = Markouts()
    marks.on_order("o1", D("0.52"))  # placed while the mid was 0.52
    marks.on_report(_fill("BUY", "10", "0.50"), 1_000, D("0.51"))
    assert marks.bots["bot_05"].edge_quoted == D("0.2")  # 10 x (0.52 - 0.50)
    marks.on_mid("yes1", 1_500, D("0.51"), D("0.53"))
    marks.on_mid("yes1", 2_500, D("0.53"), D("0.49"))  # the 1 s horizon (2,000) was still at 0.53
    marks.on_mid("yes1", 11_000, D("0.49"), D("0.55"))  # 10 s horizon due exactly now: 0.55
    # 1 s: 10 x (0.53 - 0.50) = 0.3; 10 s: 10 x (0.55 - 0.50) = 0.5; 60 s not reached
    assert marks.bots["bot_05"].markouts == [D("0.3"), D("0.5"), D(0)]
    # a sell gains when the mid falls: 10 x (0.60 - 0.58) over 1 s
    marks.on_report(_fill("SELL", "10", "0.60", coid="o2"), 20_000, D("0.60"))
    marks.on_mid("yes1", 21_000, D("0.55"), D("0.58"))
    assert marks.bots["bot_05"].markouts[0] == D("0.3") + D("0.2")
    assert "o1" not in marks.placed_mid  # forgotten once the order is finished


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


def test_the_portfolio_line_is_the_sum_of_the_bots() -> None:
    def snap(bot: str, equity: str, fees: str, trades: int) -> PnlSnapshot:
        return msgspec.structs.replace(_snap(bot, DAY, equity, trades=trades), fees=D(fees), rebates=D("0.5"))

    # the portfolio snapshot says something else on purpose: its line adds up the bots' lines
    snaps = [
        snap("bot_01", "1210", "1.25", 3),
        snap("bot_05", "1495", "0", 7),
        snap("portfolio", "1", "9", 1),
    ]
    fills = Markouts()
    fills.on_order("o1", D("0.52"))
    fills.on_report(_fill("BUY", "10", "0.50"), 0, D("0.52"))
    report = build_report(["bot_01", "bot_05"], {"bot_01": D(1200), "bot_05": D(1500)}, D(10_000), snaps,
                          [], [], fills.bots)  # fmt: skip
    total = report["portfolio"]
    assert total.pnl == D(5)  # 10 - 5
    assert total.fees == D("1.25") and total.rebates == D(1) and total.trades == 10
    assert total.equity == D(10_005) and total.roi == 0.0005
    # captured = pnl + fees - rebates per bot: (10 + 1.25 - 0.5) + (-5 + 0 - 0.5) = 5.25
    assert total.edge_captured == D("5.25") and total.edge_quoted == D("0.2")
    assert report["bot_01"].markouts == {} and total.markouts == {"1s": 0, "10s": 0, "60s": 0}
