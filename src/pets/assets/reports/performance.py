"""Daily bot performance from P&L snapshots (pure computation, exact money).

A bot's day starts from its last snapshot before the day (the baseline: equity and the cumulative
trade/win/loss counters); a bot without an earlier snapshot starts that day from zero counters and
its first snapshot's equity. Per day: trades, wins and losses closed during the day, win rate,
P&L (end - start equity), ROI (P&L / start equity), Sharpe of the snapshot-to-snapshot equity
returns scaled to the day (mean / stdev x sqrt(n); not annualized) and the largest fall from a
running equity peak (USDC).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

RATIO_PLACES = Decimal("0.000001")
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
    curve = [start_equity, *(s["equity"] for s in day_snapshots)]
    peak, drawdown = curve[0], Decimal(0)
    for equity in curve:
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
    returns = [float(b / a - 1) for a, b in itertools.pairwise(curve) if a != 0]
    sharpe = None
    if len(returns) >= 2:
        spread = statistics.stdev(returns)
        if spread > 0:
            sharpe = statistics.fmean(returns) / spread * math.sqrt(len(returns))
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
        "max_drawdown": drawdown,
    }
