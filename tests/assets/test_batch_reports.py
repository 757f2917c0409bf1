"""bot_performance_daily on seeded P&L snapshots in the real PostgreSQL, against a computation here."""

from __future__ import annotations

import itertools
import math
import random
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

DAY = date(2025, 1, 2)


def seeded_snapshots() -> list[dict[str, Any]]:
    """Three bots, snapshots every 2 hours over two days; "late" starts on the second day."""
    rng = random.Random(42)
    rows = []
    for bot, start_day in (("mm_1", 0), ("arb_1", 0), ("late", 1)):
        equity, trades, wins, losses = Decimal(1000), 0, 0, 0
        for step in range(start_day * 12, 24):
            ts = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=2 * step, minutes=7)
            equity += Decimal(rng.randint(-900, 1000)) / 100
            closed = rng.randint(0, 3)
            won = rng.randint(0, closed)
            trades, wins, losses = trades + closed, wins + won, losses + closed - won
            rows.append(
                {
                    "ts": ts,
                    "bot_id": bot,
                    "cash": equity,
                    "equity": equity,
                    "realized_pnl": Decimal(0),
                    "unrealized_pnl": Decimal(0),
                    "fees": Decimal(0),
                    "rebates": Decimal(0),
                    "exposure": Decimal(0),
                    "open_orders": 0,
                    "trades": trades,
                    "wins": wins,
                    "losses": losses,
                    "max_drawdown": Decimal(0),
                }
            )
    return rows


def expected_day(rows: list[dict[str, Any]], bot: str) -> tuple[Any, ...]:
    before = [r for r in rows if r["bot_id"] == bot and r["ts"].date() < DAY]
    during = [r for r in rows if r["bot_id"] == bot and r["ts"].date() == DAY]
    base = before[-1] if before else None
    start = base["equity"] if base else during[0]["equity"]
    equities = [start] + [r["equity"] for r in during]
    trades = during[-1]["trades"] - (base["trades"] if base else 0)
    wins = during[-1]["wins"] - (base["wins"] if base else 0)
    losses = during[-1]["losses"] - (base["losses"] if base else 0)
    worst, top = Decimal(0), equities[0]
    for e in equities:
        top = max(top, e)
        worst = max(worst, top - e)
    rets = [float(b) / float(a) - 1 for a, b in itertools.pairwise(equities)]
    mean = sum(rets) / len(rets)
    sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
    pnl = during[-1]["equity"] - start
    six = Decimal("0.000001")
    return (
        len(during),
        trades,
        wins,
        losses,
        (Decimal(wins) / (wins + losses)).quantize(six) if wins + losses else None,
        pnl,
        (pnl / start).quantize(six),
        mean / sd * math.sqrt(len(rets)),
        worst,
    )


def test_daily_bot_performance(make_resources: MakeResources, migrated_db: str) -> None:
    resources = make_resources()
    rows = seeded_snapshots()
    resources["postgres"].write(PNL_SNAPSHOTS, [PNL_SNAPSHOTS.row(r) for r in rows])
    for _ in range(2):  # a re-run replaces the day's rows
        result = dg.materialize([bot_performance_daily], partition_key=DAY.isoformat(), resources=resources)
        assert result.success
        [check] = result.get_asset_check_evaluations()
        assert check.passed, check.description
    with psycopg.connect(migrated_db) as conn:
        stored = conn.execute(
            "SELECT bot_id, snapshots, trades, wins, losses, win_rate, pnl, roi, sharpe, max_drawdown"
            " FROM bot_performance_daily WHERE day = %s ORDER BY bot_id",
            (DAY,),
        ).fetchall()
    assert [r[0] for r in stored] == ["arb_1", "late", "mm_1"]
    for row in stored:
        want = expected_day(rows, row[0])
        assert row[1:8] == want[:7]
        assert row[8] == pytest.approx(want[7], rel=1e-9)
        assert row[9] == want[8]
