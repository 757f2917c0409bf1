"""The daily whale ranking."""

from __future__ import annotations

import dagster as dg

from pets.assets.whales.assets import wallet_trades, whale_rankings

rankings_job = dg.define_asset_job(
    "rank_whales",
    selection=dg.AssetSelection.assets(wallet_trades, whale_rankings),
    description="Collect wallet trades and rank the wallets.",
)
# After the universe refresh (01:00), so yesterday's resolutions count.
daily_rankings = dg.ScheduleDefinition(
    name="daily_rankings", job=rankings_job, cron_schedule="30 2 * * *", execution_timezone="UTC"
)
