"""The PETS Dagster code location: merges every domain's assets, checks, jobs, schedules and sensors.

dagster dev -m pets.assets.definitions      (or: pets dagster dev)
"""

from __future__ import annotations

import dagster as dg

from pets.assets import streams
from pets.assets.environment import current_resources
from pets.assets.markets.assets import market_universe
from pets.assets.markets.schedules import daily_universe, universe_job
from pets.assets.models.assets import calibration_model
from pets.assets.models.checks import model_beats_raw_price, model_metrics_present
from pets.assets.models.esports import esports_win_metrics_present, esports_win_model
from pets.assets.models.schedules import retrain_job, weekly_retrain
from pets.assets.models.sensors import batch_control_sensor, resolved_markets_sensor
from pets.assets.reports.assets import bot_performance_daily
from pets.assets.reports.schedules import daily_reports, reports_job
from pets.assets.whales.assets import wallet_trades, whale_rankings
from pets.assets.whales.checks import rankings_ordered_and_unique, wallet_trades_checks
from pets.assets.whales.schedules import daily_rankings, rankings_job
from pets.schemas.topics import default_registry

BATCH_ASSETS = [
    market_universe,
    wallet_trades,
    whale_rankings,
    calibration_model,
    esports_win_model,
    bot_performance_daily,
]


def build_definitions(resources: dict[str, object]) -> dg.Definitions:
    return dg.Definitions(
        assets=[*BATCH_ASSETS, *streams.topic_specs(default_registry()), *streams.table_specs()],
        asset_checks=[
            wallet_trades_checks,
            rankings_ordered_and_unique,
            model_metrics_present,
            model_beats_raw_price,
            esports_win_metrics_present,
        ],
        jobs=[universe_job, rankings_job, retrain_job, reports_job],
        schedules=[daily_universe, daily_rankings, weekly_retrain, daily_reports],
        sensors=[resolved_markets_sensor, batch_control_sensor],
        resources=resources,
    )


defs = build_definitions(current_resources())
