"""Daily bot performance from P&L snapshots (pure computation, exact money).

A bot's day starts from its last snapshot before the day (the baseline: equity and the cumulative
trade/win/loss counters); a bot without an earlier snapshot starts that day from zero counters and
its first snapshot's equity. Per day: trades, wins and losses closed during the day, win rate,
P&L (end - start equity), ROI (P&L / start equity), and on the day's equity curve (from midnight at
the baseline's equity) Sharpe, Sortino and the max drawdown as `pets run` defines them
(execution/metrics.py: equity sampled every 15 minutes, annualised over 365 days, n/a under 30
intervals; drawdown as a fraction of the peak).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pets.execution.metrics import max_drawdown, sample_equity, sharpe_sortino

RATIO_PLACES = Decimal("0.000001")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Snapshot = Mapping[str, Any]  # ts, equity, trades, wins, losses


def day_performance(day_snapshots: Sequence[Snapshot], baseline: Snapshot | None) -> dict[str, Any]:
    """Metrics of one bot's day from its snapshots of that day (time order) and its baseline."""
    if not day_snapshots:
        raise ValueError("a performance day needs at least one snapshot")
    first, last = day_snapshots[0], day_snapshots[-1]
    start_equity: Decimal = baseline["equity"] if baseline else first["equity"]
    counters = {k: (baseline[k] if baseline else 0) for k in ("trades", "wins", "losses")}
    trades = last["trades"] - counters["trades"]
    wins, losses = last["wins"] - counters["wins"], last["losses"] - counters["losses"]
    points = [(_ns(s["ts"]), s["equity"]) for s in day_snapshots]
    if baseline:  # the baseline's equity is the one in force when the day starts
        midnight = first["ts"].astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        points.insert(0, (_ns(midnight), start_equity))
    equity = [e for _, e in points]
    sharpe, sortino = sharpe_sortino(sample_equity([t for t, _ in points], equity))
    pnl = last["equity"] - start_equity
    decided = wins + losses
    return {
        "snapshots": len(day_snapshots),
        "trades": trades,
        "wins": wins,
        "losses": losses,
        "win_rate": (Decimal(wins) / decided).quantize(RATIO_PLACES, ROUND_HALF_EVEN) if decided else None,
        "start_equity": start_equity,
        "end_equity": last["equity"],
        "pnl": pnl,
        "roi": (pnl / start_equity).quantize(RATIO_PLACES, ROUND_HALF_EVEN) if start_equity else None,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": max_drawdown(equity).quantize(RATIO_PLACES, ROUND_HALF_EVEN),
    }


def _ns(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(microseconds=1) * 1_000
