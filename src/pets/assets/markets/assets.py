"""The market universe: markets and events from Gamma into the ``markets`` table and ``md.markets``."""

import json
import time
from collections.abc import Iterator
from datetime import datetime

import dagster as dg
from pydantic import Field

from pets.assets.markets.checks import UNIVERSE_CHECKS, universe_checks
from pets.assets.resources import GammaResource, KafkaResource, PostgresResource
from pets.pipelines.polymarket.universe import market_row
from pets.pipelines.tables import MARKETS
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo

UNIVERSE_PARTITIONS = dg.DailyPartitionsDefinition(start_date="2020-01-01")
DEAD_LETTER_TOPIC = "dlq.market_data"


class UniverseConfig(dg.Config):
    include_open: bool = Field(
        default=True,
        description="Also refresh every open market (the live universe), not only those ending that day.",
    )


def _gamma_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dg.asset(
    partitions_def=UNIVERSE_PARTITIONS,
    group_name="markets",
    kinds={"python", "postgres", "kafka"},
    check_specs=UNIVERSE_CHECKS,
)
def market_universe(
    context: dg.AssetExecutionContext,
    config: UniverseConfig,
    gamma: GammaResource,
    postgres: PostgresResource,
    kafka: KafkaResource,
) -> Iterator[dg.MaterializeResult]:
    """Markets ending on the partition's day (plus every open market) from Gamma, upserted and published."""
    from pets.pipelines.polymarket.gamma import MarketParseError, parse_market

    window = context.partition_time_window
    client = gamma.client()
    raw_markets = {
        str(raw.get("conditionId") or raw.get("id")): raw
        for raw in client.iter_markets(
            end_date_min=_gamma_time(window.start), end_date_max=_gamma_time(window.end)
        )
    }
    if config.include_open:
        raw_markets.update(
            (str(r.get("conditionId") or r.get("id")), r) for r in client.iter_markets(closed=False)
        )
    markets: list[MarketInfo] = []
    dead: list[tuple[str, DeadLetter]] = []
    for key, raw in raw_markets.items():
        try:
            markets.append(parse_market(raw))
        except MarketParseError as exc:
            letter = DeadLetter.from_bytes(
                "market_universe", str(exc), json.dumps(raw).encode(), ts_ns=time.time_ns(), key=key
            )
            dead.append((key, letter))
    checks = universe_checks(markets)
    # The partition's end is the observation time: re-running a partition writes identical rows
    # (no change), and an older partition never overwrites a newer state.
    postgres.migrate()
    written = postgres.write(MARKETS, [market_row(m, window.end) for m in markets])
    published = kafka.publish("md.markets", [(m.condition_id, m) for m in markets])
    if dead:
        kafka.publish(DEAD_LETTER_TOPIC, dead)
        context.log.warning(f"{len(dead)} Gamma market(s) could not be parsed: sent to {DEAD_LETTER_TOPIC}")
    yield dg.MaterializeResult(
        metadata={
            "markets": len(markets),
            "closed": sum(m.closed for m in markets),
            "resolved": sum(m.winning_asset_id is not None for m in markets),
            "rows_changed": written,
            "published": published,
            "dead_letters": len(dead),
        },
        check_results=checks,
    )
