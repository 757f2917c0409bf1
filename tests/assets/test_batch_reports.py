"""bot_performance_daily on hand-made P&L snapshots in the real PostgreSQL, against results worked
out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import dagster as dg
import psycopg
import pytest
from batch_support import MakeResources

from pets.assets.reports.assets import bot_performance_daily
from pets.pipelines.tables import PNL_SNAPSHOTS

pytestmark = pytest.mark.integration

D = Decimal
DAY = date(2025, 1, 2)
MIDNIGHT = datetime(2025, 1, 2, tzinfo=UTC)


def snapshot(bot: str, ts: datetime, equity: Decimal, trades: int, wins: int, losses: int) -> dict[str, Any]:
    zero = D(0)
    return {
        "ts": ts, "bot_id": bot, "cash": equity, "equity": equity, "realized_pnl": zero,
        "unrealized_pnl": zero, "fees": zero, "rebates": zero, "exposure": zero, "open_orders": 0,
        "trades": trades, "wins": wins, "losses": losses, "max_drawdown": zero,
    }  # fmt: skip


def hand_made() -> list[dict[str, Any]]:
    rows = [
        # "arb": a baseline the day before, then three snapshots two hours apart
        snapshot("arb", MIDNIGHT - timedelta(hours=1), D(1000), 2, 1, 0),
        snapshot("arb", MIDNIGHT + timedelta(hours=1), D(1010), 5, 2, 1),
        snapshot("arb", MIDNIGHT + timedelta(hours=3), D(990), 7, 3, 1),
        snapshot("arb", MIDNIGHT + timedelta(hours=5), D(1020), 9, 4, 2),
        # "late": another day, outside this partition
        snapshot("late", MIDNIGHT + timedelta(days=1), D(500), 1, 0, 0),
    ]
    # "idle": a baseline two days old, then 24 snapshots 15 minutes apart from 00:15: the day is
    # 24 intervals from midnight (the days without snapshots are not flat intervals of this day)
    rows.append(snapshot("idle", MIDNIGHT - timedelta(days=2), D(500), 0, 0, 0))
    for i in range(1, 25):
        rows.append(snapshot("idle", MIDNIGHT + timedelta(minutes=15 * i), D(500 + i % 2), 0, 0, 0))
    # "mm": new today, every 15 minutes up 2% then down 1%, 30 intervals (00:00 .. 07:30)
    equity = D(100)
    for i in range(31):
        rows.append(snapshot("mm", MIDNIGHT + timedelta(minutes=15 * i), equity, i, 0, 0))
        equity *= D("1.02") if i % 2 == 0 else D("0.99")
    return rows


def test_daily_bot_performance(make_resources: MakeResources, migrated_db: str) -> None:
    resources = make_resources()
    resources["postgres"].write(PNL_SNAPSHOTS, [PNL_SNAPSHOTS.row(r) for r in hand_made()])
    for _ in range(2):  # a re-run replaces the day's rows
        result = dg.materialize([bot_performance_daily], partition_key=DAY.isoformat(), resources=resources)
        assert result.success
        [check] = result.get_asset_check_evaluations()
        assert check.passed, check.description
    with psycopg.connect(migrated_db) as conn:
        stored = conn.execute(
            "SELECT bot_id, snapshots, trades, wins, losses, win_rate, pnl, roi, sharpe, sortino,"
            " max_drawdown FROM bot_performance_daily WHERE day = %s ORDER BY bot_id",
            (DAY,),
        ).fetchall()
    assert [r[0] for r in stored] == ["arb", "idle", "mm"]
    arb, idle, mm = stored
    assert idle[8:10] == (None, None)
    # arb: counters from the baseline (2, 1, 0) to (9, 4, 2): 7 trades, 3 wins, 2 losses -> 0.6;
    # P&L 1020 - 1000 = 20, ROI 0.02; midnight to 05:00 = 20 fifteen-minute intervals: no Sharpe;
    # drawdown 1010 -> 990 = 20 / 1010 = 0.019802
    assert arb[1:] == (3, 7, 3, 2, D("0.6"), D(20), D("0.02"), None, None, D("0.019802"))
    # mm: 30 returns, 15 x 0.02 and 15 x -0.01 (no baseline: counters from 0): Sharpe 61.3474 and
    # Sortino 132.3629 as worked out in tests/execution/test_metrics.py; every fall is 1% of its peak
    assert mm[1:5] == (31, 30, 0, 0) and mm[5] is None
    # P&L: 100 x (1.02 x 0.99)^15 - 100 = 100 x 1.0098^15 - 100 = 15.7525...; ROI 0.157525
    assert abs(mm[6] - D("15.7525")) < D("0.0001") and mm[7] == D("0.157525")
    assert math.isclose(mm[8], 61.3474, rel_tol=1e-5) and math.isclose(mm[9], 132.3629, rel_tol=1e-5)
    assert mm[10] == D("0.01")
