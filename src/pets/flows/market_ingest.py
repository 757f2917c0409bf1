"""The market ingestion service: Gamma discovery -> md.markets + `markets`; the market WebSocket -> md.book.

`pets flow run market_ingest` calls `run(settings)`. It is an asyncio service, not a Bytewax
dataflow: its input is the venue (no Kafka offsets to recover), and the first dataflow downstream
(pets.flows.market_state) consumes md.book. Every `refresh_interval_s` it re-reads the universe,
publishes what changed and moves the WebSocket subscriptions to the tokens of the open markets
that accept orders (subscribing new ones, unsubscribing closed ones on the live connections).
A failed refresh (Gamma down or answering in an unexpected shape, Kafka or PostgreSQL refusing the
update) is logged, counted in `failed_refreshes` and retried next time; streaming goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec
import psycopg
from kafka.errors import KafkaError

from pets.observability import metrics
from pets.pipelines import kafka_io
from pets.pipelines.migrations import migrate
from pets.pipelines.polymarket.gamma import GammaClient, MarketParseError
from pets.pipelines.polymarket.http import QueryValue, VenueHttpError
from pets.pipelines.polymarket.kafka_sink import DLQ_TOPIC, KafkaFrameSink
from pets.pipelines.polymarket.market_ws import ChannelStats, MarketChannel, MarketWsConfig
from pets.pipelines.polymarket.universe import (
    Discovery,
    UniversePublisher,
    discover,
    discover_closed,
    tradable_tokens,
)
from pets.pipelines.timescale import TimescaleWriter
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

log = logging.getLogger(__name__)

MARKETS_TOPIC = "md.markets"


@dataclass(frozen=True, slots=True)
class IngestConfig:
    refresh_interval_s: float = 300.0
    gamma_filters: Mapping[str, QueryValue] = field(default_factory=lambda: {"closed": False, "active": True})
    max_tokens: int | None = None  # subscribe at most this many tokens (in Gamma's order)
    write_db: bool = True  # upsert the `markets` table when PostgreSQL is configured
    shard_size: int = 200
    silence_timeout_s: float = 60.0


class IngestStats(msgspec.Struct):
    refreshes: int = 0
    failed_refreshes: int = 0
    markets: int = 0
    markets_changed: int = 0
    dead_letters: int = 0
    tokens: int = 0
    channel: ChannelStats | None = None


def run(
    settings: Settings, config: IngestConfig | None = None, *, stop: threading.Event | None = None
) -> IngestStats:
    """Run until SIGINT/SIGTERM (or `stop` is set, for callers in another thread)."""
    return asyncio.run(run_async(settings, config or IngestConfig(), stop=stop))


async def run_async(
    settings: Settings, config: IngestConfig, *, stop: threading.Event | None = None
) -> IngestStats:
    registry = load_topic_registry(settings.config_dir)
    kafka_io.ensure_topics(settings, [MARKETS_TOPIC])
    sink = KafkaFrameSink.from_settings(settings, source="market_ingest")
    writer = None
    if config.write_db and settings.postgres_dsn:
        migrate(settings.postgres_dsn)
        writer = TimescaleWriter(settings.postgres_dsn)
    markets_producer = kafka_io.producer(settings)  # low volume; md.book has its own fast producer
    publisher = UniversePublisher(
        markets_producer,
        registry.get(MARKETS_TOPIC).full_name(settings.topic_prefix),
        registry.get(DLQ_TOPIC).full_name(settings.topic_prefix),
        writer,
    )
    ws_config = MarketWsConfig.from_settings(
        settings, shard_size=config.shard_size, silence_timeout_s=config.silence_timeout_s
    )
    channel = MarketChannel(ws_config, sink)
    stats = IngestStats(channel=channel.stats)
    metrics.watch_channel(channel.stats)
    stopping = asyncio.Event()
    _stop_on_signals(stopping, stop)
    streaming = asyncio.create_task(channel.run(()))
    gamma = GammaClient(settings.venue.gamma_url)
    try:
        while not stopping.is_set():
            await _refresh(gamma, publisher, channel, config, stats)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), config.refresh_interval_s)
    finally:
        channel.stop()
        await streaming
        sink.close()
        markets_producer.close()
        if writer is not None:
            writer.close()
    return stats


async def _refresh(
    gamma: GammaClient,
    publisher: UniversePublisher,
    channel: MarketChannel,
    config: IngestConfig,
    stats: IngestStats,
) -> None:
    try:
        discovery = await asyncio.to_thread(discover, gamma, **config.gamma_filters)
        vanished = publisher.open_markets() - {m.condition_id for m in discovery.markets}
        if vanished:  # left the open list: publish their final state (closed, winner) too
            final = await asyncio.to_thread(discover_closed, gamma, vanished)
            discovery = Discovery(
                discovery.markets + final.markets, discovery.dead_letters + final.dead_letters
            )
        changed = await asyncio.to_thread(publisher.publish, discovery, time.time_ns())
    except (VenueHttpError, MarketParseError, KafkaError, psycopg.Error) as exc:
        stats.failed_refreshes += 1
        log.error("universe refresh failed (%s); retrying next refresh", _describe(exc))
        return
    tokens = tradable_tokens(discovery.markets)[: config.max_tokens]
    for market in discovery.markets:  # what the frames say wins (it is what the books are keyed by)
        for token in market.token_ids:
            channel.markets.setdefault(token, market.condition_id)
    current = channel.assets
    await channel.unsubscribe(current - set(tokens))
    await channel.subscribe(t for t in tokens if t not in current)
    stats.refreshes += 1
    stats.markets = len(discovery.markets)
    stats.markets_changed += len(changed)
    stats.dead_letters += len(discovery.dead_letters)
    stats.tokens = len(tokens)
    log.info(
        "universe: %d markets (%d changed, %d dead-lettered), %d tokens subscribed",
        len(discovery.markets),
        len(changed),
        len(discovery.dead_letters),
        len(tokens),
    )


def _describe(exc: Exception) -> str:
    """The error without its message when that can echo connection parameters (a DSN's password)."""
    if isinstance(exc, psycopg.Error):
        return f"PostgreSQL {type(exc).__name__}, SQLSTATE {exc.sqlstate or 'none'}"
    return f"{type(exc).__name__}: {exc}"


def _stop_on_signals(stopping: asyncio.Event, stop: threading.Event | None) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(signum, stopping.set)
    if stop is not None:
        threading.Thread(
            target=lambda: (stop.wait(), loop.call_soon_threadsafe(stopping.set)), daemon=True
        ).start()
