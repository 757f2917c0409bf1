"""The chain pipeline as a service: Polygon `OrderFilled` logs -> chain.fill (+ dlq.signals).

`pets flow run chain` and `pets chain follow` call `run(settings)`. Not a Bytewax dataflow: its input is
the node (no Kafka offsets to recover); its resumption point is the watermark file
`<state_dir>/chain/watermark.json` plus the fills already on chain.fill (pipelines/chain/follower.py).
The token check uses the `markets` table when PostgreSQL is configured.
"""

from __future__ import annotations

import logging
import signal
import threading

from pets.pipelines.chain.follower import (
    ChainFollower,
    Confirmations,
    FollowStats,
    WatermarkStore,
    Web3LogSource,
)
from pets.pipelines.chain.kafka_sink import KafkaFillSink
from pets.settings import Settings

log = logging.getLogger(__name__)


def follower_for(
    settings: Settings, *, from_block: int | None = None, confirmations: Confirmations = "finalized"
) -> ChainFollower:
    known = None
    if settings.postgres_dsn:
        from pets.pipelines.chain.universe import TableUniverse

        known = TableUniverse(settings.postgres_dsn).known
    return ChainFollower(
        Web3LogSource(settings.venue.polygon_rpc_url),
        KafkaFillSink(settings),
        WatermarkStore(settings.state_dir / "chain" / "watermark.json"),
        confirmations=confirmations,
        start_block=from_block,
        known_token=known,
    )


def run(
    settings: Settings,
    *,
    from_block: int | None = None,
    confirmations: Confirmations = "finalized",
    stop: threading.Event | None = None,
) -> FollowStats:
    """Follow the chain until SIGINT/SIGTERM (or `stop` is set)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    follower = follower_for(settings, from_block=from_block, confirmations=confirmations)
    url = settings.venue.polygon_rpc_url
    log.info("chain: following %s from block %s (%s)", url, follower.watermark, confirmations)
    stats = follower.run(stop.is_set)
    log.info("chain: stopped at block %s: %s", follower.watermark, stats)
    return stats
