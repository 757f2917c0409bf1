"""The chain pipeline as a service: Polygon `OrderFilled` logs -> chain.fill (+ dlq.signals).

`pets flow run chain` and `pets chain follow` call `run(settings)`. Not a Bytewax dataflow: its input is
the node (no Kafka offsets to recover); its resumption point is the watermark file
`<state_dir>/chain/watermark.json` plus the fills already on chain.fill (pipelines/chain/follower.py).
The token check uses the `markets` table when PostgreSQL is configured.

With `data_api=True` (`pets chain follow --data-api`) a second thread polls the Data API for the
wallets Bot 3 follows (the latest ranking on whale.rankings, re-read every `rankings_every_s`, with
Bot 3's selection rules, pins and exclusions); both sources go through one FillMerger, so a fill is
published once, and each source's latency is logged every `report_every_s`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from pets.bots.copy_trading import followed_wallets
from pets.observability import metrics
from pets.pipelines.chain.data_api import DataApiFollower, FillMerger, MergingSink
from pets.pipelines.chain.follower import (
    ChainFollower,
    Confirmations,
    FollowStats,
    WatermarkStore,
    Web3LogSource,
)
from pets.pipelines.chain.kafka_sink import KafkaFillSink
from pets.pipelines.polymarket.http import JsonHttpClient
from pets.schemas.config import CopyTradingParams, load_config
from pets.schemas.signals import WhaleRanking
from pets.settings import Settings

log = logging.getLogger(__name__)


def follower_for(
    settings: Settings,
    *,
    from_block: int | None = None,
    confirmations: Confirmations = "finalized",
    merger: FillMerger | None = None,
) -> ChainFollower:
    known = None
    if settings.postgres_dsn:
        from pets.pipelines.chain.universe import TableUniverse

        known = TableUniverse(settings.postgres_dsn).known
    sink = KafkaFillSink(settings)
    return ChainFollower(
        Web3LogSource(settings.venue.polygon_rpc_url, observe=metrics.observe_rpc),
        MergingSink(sink, merger, "chain") if merger is not None else sink,
        WatermarkStore(settings.state_dir / "chain" / "watermark.json"),
        confirmations=confirmations,
        start_block=from_block,
        known_token=known,
    )


def followed(settings: Settings) -> list[str]:
    """The wallets Bot 3 follows now: its rules over the latest ranking on whale.rankings."""
    from pets.flows.trading_io import read_topics

    params = load_config(settings.config_dir).bot("bot_03").params_as(CopyTradingParams)
    rows = [r for r in read_topics(settings, ["whale.rankings"]) if isinstance(r, WhaleRanking)]
    latest = max((r.ranking_date for r in rows), default="")
    return sorted(followed_wallets({r.wallet.lower(): r for r in rows if r.ranking_date == latest}, params))


def _data_api_loop(
    settings: Settings, merger: FillMerger, stop: threading.Event, poll_s: float, rankings_every_s: float
) -> None:
    sink = MergingSink(KafkaFillSink(settings), merger, "data_api")
    wallets: list[str] = []
    read_at = -rankings_every_s
    follower = DataApiFollower(JsonHttpClient(settings.venue.data_api_url), sink, lambda: wallets)
    while not stop.is_set():
        if time.monotonic() - read_at >= rankings_every_s:
            wallets = followed(settings)
            read_at = time.monotonic()
        try:
            follower.poll()
        except Exception:  # the Data API is the optional source: the chain goes on without it
            log.exception("chain: Data API poll failed; retrying in %.0f s", poll_s)
        stop.wait(poll_s)


def run(
    settings: Settings,
    *,
    from_block: int | None = None,
    confirmations: Confirmations = "finalized",
    data_api: bool = False,
    stop: threading.Event | None = None,
    data_api_poll_s: float = 2.0,
    rankings_every_s: float = 60.0,
    report_every_s: float = 60.0,
) -> FollowStats:
    """Follow the chain (and the Data API) until SIGINT/SIGTERM or `stop`."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    merger = FillMerger() if data_api else None
    follower = follower_for(settings, from_block=from_block, confirmations=confirmations, merger=merger)
    threads = []
    if merger is not None:
        args = (settings, merger, stop, data_api_poll_s, rankings_every_s)
        threads.append(threading.Thread(target=_data_api_loop, args=args, name="data-api", daemon=True))
    for thread in threads:
        thread.start()
    url = settings.venue.polygon_rpc_url
    log.info("chain: following %s from block %s (%s)", url, follower.watermark, confirmations)
    reported = time.monotonic()

    def done() -> bool:
        nonlocal reported
        if merger is not None and time.monotonic() - reported >= report_every_s:
            reported = time.monotonic()
            for source, lat in merger.latency.items():
                log.info("chain: %s saw %d fills (first for %d), latency mean %s ms, max %d ms",
                         source, lat.fills, lat.first, lat.mean_ms, lat.max_ms)  # fmt: skip
        return stop.is_set()

    stats = follower.run(done)
    for thread in threads:
        thread.join(10)
    log.info("chain: stopped at block %s: %s", follower.watermark, stats)
    return stats
