"""The daily market-universe refresh."""

from __future__ import annotations

import dagster as dg

from pets.assets.markets.assets import UNIVERSE_PARTITIONS, market_universe

universe_job = dg.define_asset_job(
    "refresh_universe",
    selection=[market_universe],
    partitions_def=UNIVERSE_PARTITIONS,
    description="Refresh the market universe from Gamma for one day.",
)
# Runs at 01:00 UTC for the day that just ended: its markets have had time to resolve.
daily_universe = dg.build_schedule_from_partitioned_job(universe_job, name="daily_universe", hour_of_day=1)
