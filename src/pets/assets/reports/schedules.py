"""The daily bot performance report."""

from __future__ import annotations

import dagster as dg

from pets.assets.reports.assets import REPORT_PARTITIONS, bot_performance_daily

reports_job = dg.define_asset_job(
    "bot_performance_report",
    selection=[bot_performance_daily],
    partitions_def=REPORT_PARTITIONS,
    description="Daily performance per bot.",
)
# 00:30 UTC for the day that just ended.
daily_reports = dg.build_schedule_from_partitioned_job(
    reports_job, name="daily_bot_performance", hour_of_day=0, minute_of_hour=30
)
