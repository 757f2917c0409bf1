"""Reports: daily performance per bot from the P&L snapshots the trading flows write."""

from collections import defaultdict
from typing import Any

import dagster as dg
import polars as pl

from pets.assets.reports.checks import PERFORMANCE_CHECKS, check_performance
from pets.assets.reports.performance import day_performance
from pets.assets.resources import PostgresResource
from pets.assets.streams import PNL_SNAPSHOTS_TABLE
from pets.pipelines.tables import define_table

REPORT_PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01")
BOT_PERFORMANCE_DAILY = define_table(
    "bot_performance_daily",
    """day date, bot_id text, snapshots integer, trades integer, wins integer, losses integer,
    win_rate numeric, start_equity numeric, end_equity numeric, pnl numeric, roi numeric,
    sharpe double precision, max_drawdown numeric, sortino double precision""",
    key=("day", "bot_id"),
)
PERFORMANCE_SCHEMA: dict[str, Any] = {
    "day": pl.Date,
    "bot_id": pl.String,
    "snapshots": pl.Int64,
    "trades": pl.Int64,
    "wins": pl.Int64,
    "losses": pl.Int64,
    "win_rate": pl.Decimal(38, 6),
    "start_equity": pl.Decimal(38, 12),
    "end_equity": pl.Decimal(38, 12),
    "pnl": pl.Decimal(38, 12),
    "roi": pl.Decimal(38, 6),
    "sharpe": pl.Float64,
    "max_drawdown": pl.Decimal(38, 12),
    "sortino": pl.Float64,
}


@dg.asset(
    partitions_def=REPORT_PARTITIONS,
    group_name="reports",
    kinds={"python", "postgres"},
    deps=[PNL_SNAPSHOTS_TABLE],
    check_specs=PERFORMANCE_CHECKS,
)
def bot_performance_daily(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult:
    """Per bot and day: trades, win rate, P&L, ROI, Sharpe, Sortino and max drawdown from pnl_snapshots."""
    window = context.partition_time_window
    day = window.start.date()
    postgres.migrate()
    with postgres.connect() as conn:
        snapshots = conn.execute(
            "SELECT bot_id, ts, equity, trades, wins, losses FROM pnl_snapshots"
            " WHERE ts >= %s AND ts < %s ORDER BY bot_id, ts",
            (window.start, window.end),
        ).fetchall()
        baselines = conn.execute(
            "SELECT DISTINCT ON (bot_id) bot_id, ts, equity, trades, wins, losses FROM pnl_snapshots"
            " WHERE ts < %s ORDER BY bot_id, ts DESC",
            (window.start,),
        ).fetchall()
    columns = ("ts", "equity", "trades", "wins", "losses")
    by_bot: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for bot_id, *values in snapshots:
        by_bot[bot_id].append(dict(zip(columns, values, strict=True)))
    baseline = {bot_id: dict(zip(columns, values, strict=True)) for bot_id, *values in baselines}
    rows = [
        {"day": day, "bot_id": bot_id, **day_performance(day_rows, baseline.get(bot_id))}
        for bot_id, day_rows in sorted(by_bot.items())
    ]
    frame = pl.DataFrame(rows, schema=PERFORMANCE_SCHEMA)
    check = check_performance(frame)
    written = postgres.replace(
        BOT_PERFORMANCE_DAILY, "day = %s", [day], [BOT_PERFORMANCE_DAILY.row(r) for r in rows]
    )
    return dg.MaterializeResult(
        metadata={"day": day.isoformat(), "bots": written, "snapshots": len(snapshots)},
        check_results=[check],
    )
