"""The market-channel WebSocket client: sharded subscriptions, keepalive, watchdog, reconnect, resync.

Per shard (at most `shard_size` tokens, one connection) the client:
- subscribes with `{"type":"market","assets_ids":[...],"custom_feature_enabled":true}` and later
  `{"operation":"subscribe"|"unsubscribe",...}` as the universe changes;
- sends text `PING` every `ping_interval_s` (the venue answers `PONG`; `NO NEW ASSETS` is noted);
- splits every message into events and hands each, with its exact bytes, to the `FrameSink`;
  anything that is not an event is dead-lettered with the reason;
- treats a dropped socket and a silent subscription (no market data for `silence_timeout_s` while
  one of its markets is open) alike: it emits `continuity` "lost" for every asset of the shard at
  once, reconnects with exponential backoff, resubscribes, fetches REST `POST /books` for the
  shard and emits those snapshots as `book` events followed by `continuity` "resynced". Until
  then downstream knows the books are not trustworthy: the venue replays nothing.
Frames keep arrival order, except that frames arriving while a resync snapshot is in flight are
held back and forwarded right after it: a frame the venue applied after taking the snapshot can
reach us before the REST answer, and replayed after the snapshot it cannot be overwritten by the
older state (a level update sets an absolute size, so replaying an already included one is harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from pets.pipelines.polymarket.clob_rest import ClobRestClient
from pets.pipelines.polymarket.frames import (
    NO_NEW_ASSETS,
    PONG,
    BadFrameError,
    FrameSink,
    MarketEvent,
    continuity_event,
    events_of,
    rest_book_event,
)
from pets.pipelines.polymarket.http import VenueHttpError
from pets.schemas.market_data import ContinuityStatus
from pets.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MarketWsConfig:
    ws_url: str
    clob_url: str
    shard_size: int = 200  # tokens per connection; the venue loses snapshots above ~500
    ping_interval_s: float = 10.0
    silence_timeout_s: float = 60.0  # no market data this long on an open market = silent subscription
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    open_timeout_s: float = 10.0
    rest_timeout_s: float = 10.0
    custom_features: bool = True  # best_bid_ask, new_market, market_resolved

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> MarketWsConfig:
        return replace(cls(settings.venue.ws_market_url, settings.venue.clob_url), **overrides)

    def backoff_s(self, attempt: int) -> float:
        return float(min(self.reconnect_max_s, self.reconnect_initial_s * 2**attempt))


@dataclass
class ChannelStats:
    messages: int = 0
    events: int = 0
    dead_letters: int = 0
    pongs: int = 0
    no_new_assets: int = 0
    connects: int = 0
    reconnects: int = 0
    gaps: int = 0
    resyncs: int = 0


@dataclass
class _Shard:
    number: int
    assets: set[str] = field(default_factory=set)
    resolved: set[str] = field(default_factory=set)  # markets resolved: silence is expected
    conn: ClientConnection | None = None
    task: asyncio.Task[None] | None = None
    connects: int = 0
    held: list[tuple[MarketEvent, int]] | None = None  # frames held back while a resync snapshot is fetched
    lost: bool = False  # a "lost" continuity was emitted and no resync followed yet
    connected_before: bool = False


class MarketChannel:
    """Streams the market channel of a set of tokens into a FrameSink until stopped."""

    def __init__(
        self,
        config: MarketWsConfig,
        sink: FrameSink,
        *,
        clob: ClobRestClient | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.sink = sink
        self.clob = clob or ClobRestClient(config.clob_url, timeout_s=config.rest_timeout_s)
        self.clock = clock
        self.stats = ChannelStats()
        self.markets: dict[str, str] = {}  # asset id -> market (condition id): from frames or discovery
        self._shards: list[_Shard] = []
        self._shard_numbers = itertools.count()
        self._stopping = asyncio.Event()

    # ---- public API ------------------------------------------------------------------------------
    async def run(self, asset_ids: Iterable[str], *, duration_s: float | None = None) -> ChannelStats:
        """Stream until `stop()` (or `duration_s`), then close every connection and flush the sink."""
        await self.subscribe(asset_ids)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), duration_s)
        await self._shutdown()
        return self.stats

    def stop(self) -> None:
        self._stopping.set()

    @property
    def assets(self) -> set[str]:
        return {a for shard in self._shards for a in shard.assets}

    async def subscribe(self, asset_ids: Iterable[str]) -> None:
        """Add tokens: fill shards with room (an `operation: subscribe` on a live one), then new shards."""
        new = [a for a in dict.fromkeys(asset_ids) if a not in self.assets]
        for shard in self._shards:
            room = self.config.shard_size - len(shard.assets)
            if room <= 0 or not new:
                continue
            chunk, new = new[:room], new[room:]
            shard.assets.update(chunk)
            await self._send_operation(shard, "subscribe", chunk)
        while new:
            chunk, new = new[: self.config.shard_size], new[self.config.shard_size :]
            shard = _Shard(next(self._shard_numbers), set(chunk))
            self._shards.append(shard)
            shard.task = asyncio.create_task(self._run_shard(shard), name=f"market-ws-shard-{shard.number}")

    async def unsubscribe(self, asset_ids: Iterable[str]) -> None:
        """Drop tokens (closed markets); a shard left empty is closed."""
        gone = set(asset_ids)
        for shard in list(self._shards):
            leaving = sorted(shard.assets & gone)
            if not leaving:
                continue
            shard.assets.difference_update(leaving)
            if shard.assets:
                await self._send_operation(shard, "unsubscribe", leaving)
            else:
                self._shards.remove(shard)
                if shard.task:
                    shard.task.cancel()

    # ---- one connection --------------------------------------------------------------------------
    async def _run_shard(self, shard: _Shard) -> None:
        attempt = 0
        gap: str | None = None
        while not self._stopping.is_set():
            try:
                async with connect(
                    self.config.ws_url,
                    open_timeout=self.config.open_timeout_s,
                    ping_interval=None,  # the venue's keepalive is the text PING below
                    compression=None,
                    max_size=None,
                    close_timeout=2,
                    proxy=None,
                ) as conn:
                    shard.conn = conn
                    self.stats.connects += 1
                    self.stats.reconnects += shard.connects > 0
                    shard.connects += 1
                    await conn.send(msgspec.json.encode(self._subscription(sorted(shard.assets))).decode())
                    resync = asyncio.create_task(self._resync(shard, gap or "")) if shard.lost else None
                    try:
                        gap, got_data = await self._receive(shard, conn)
                        attempt = 0 if got_data else attempt
                    finally:
                        if resync:
                            resync.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await resync
                        self._release_held(shard)  # never drop what the venue sent
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                gap = f"connect failed: {exc!r}"
            finally:
                shard.conn = None
            if self._stopping.is_set():
                return
            self._on_gap(shard, gap)
            await self._sleep(self.config.backoff_s(attempt))
            attempt += 1

    def _subscription(self, assets: list[str]) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "market", "assets_ids": assets}
        if self.config.custom_features:
            message["custom_feature_enabled"] = True
        return message

    async def _receive(self, shard: _Shard, conn: ClientConnection) -> tuple[str, bool]:
        """Forward frames until the socket drops, goes silent or we stop: (why it ended, got data)."""
        pinger = asyncio.create_task(self._ping(conn))
        last_data = time.monotonic()
        got_data = False
        try:
            while not self._stopping.is_set():
                timeout = max(self.config.silence_timeout_s - (time.monotonic() - last_data), 0)
                try:
                    async with asyncio.timeout(timeout):
                        message = await conn.recv(decode=False)
                except TimeoutError:
                    if not shard.assets - shard.resolved:
                        last_data = time.monotonic()  # every market resolved: silence is expected
                        continue
                    await conn.close(1000, "silent subscription")
                    return f"silent for {self.config.silence_timeout_s:g}s with the socket open", got_data
                except ConnectionClosed as exc:
                    return f"socket closed: {exc}", got_data
                if self._on_message(shard, message if isinstance(message, bytes) else message.encode()):
                    last_data = time.monotonic()
                    got_data = shard.connected_before = True
            return "stopped", got_data
        finally:
            pinger.cancel()

    async def _ping(self, conn: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.config.ping_interval_s)
                await conn.send("PING")

    def _on_message(self, shard: _Shard, message: bytes) -> bool:
        """Forward one message; True when it carried market data (resets the silence watchdog)."""
        recv_ns = self.clock()
        self.stats.messages += 1
        body = message.strip()
        if body == PONG:
            self.stats.pongs += 1
            return False
        if body == NO_NEW_ASSETS:
            self.stats.no_new_assets += 1
            return False
        try:
            events = events_of(message)
        except BadFrameError as exc:
            self.stats.dead_letters += 1
            self.sink.on_dead_letter(str(exc), message, recv_ns)
            return False
        for event in events:
            self._learn(shard, event)
            self.stats.events += 1
            if shard.held is None:
                self.sink.on_event(event, recv_ns, "ws")
            else:
                shard.held.append((event, recv_ns))
        return True

    def _release_held(self, shard: _Shard) -> None:
        """Forward the frames held during a snapshot request, in arrival order."""
        held, shard.held = shard.held or [], None
        for event, recv_ns in held:
            self.sink.on_event(event, recv_ns, "ws")

    def _learn(self, shard: _Shard, event: MarketEvent) -> None:
        if event.market is not None:  # the frames' market wins: it is what the book state is keyed by
            for asset in event.asset_ids:
                self.markets[asset] = event.market
        if event.event_type == "market_resolved":
            shard.resolved.update(event.asset_ids)

    # ---- gaps ------------------------------------------------------------------------------------
    def _on_gap(self, shard: _Shard, reason: str) -> None:
        if shard.lost or not shard.connected_before:
            return  # already said so (or never had data to lose)
        log.warning("market ws shard %d lost continuity: %s", shard.number, reason)
        shard.lost = True
        self.stats.gaps += 1
        self._emit_continuity(sorted(shard.assets), "lost", reason)

    async def _resync(self, shard: _Shard, gap: str) -> None:
        """REST snapshots of the shard after a gap, then "resynced"; retried until done or the socket ends."""
        attempt = 0
        while True:
            assets = sorted(shard.assets)
            shard.held = []  # frames arriving while the snapshot is in flight go out after it
            try:
                books = await asyncio.to_thread(self.clob.books, assets)
                break
            except VenueHttpError as exc:
                self._release_held(shard)
                log.warning("resync of shard %d failed (%s); retrying", shard.number, exc)
                await asyncio.sleep(self.config.backoff_s(attempt))
                attempt += 1
        recv_ns = self.clock()
        synced: list[str] = []
        for book in books:
            try:
                event = rest_book_event(book)
            except BadFrameError as exc:
                self.sink.on_dead_letter(f"REST /books: {exc}", msgspec.json.encode(book), recv_ns)
                continue
            self._learn(shard, event)
            self.sink.on_event(event, recv_ns, "rest")
            synced.extend(a for a in event.asset_ids if a in assets)
        self._release_held(shard)
        missing = sorted(set(assets) - set(synced))
        if missing:
            log.warning("no REST book for %d asset(s) of shard %d: still lost", len(missing), shard.number)
        log.info(
            "market ws shard %d resynced %d asset(s) from REST /books after: %s",
            shard.number,
            len(synced),
            gap,
        )
        self._emit_continuity(sorted(set(synced)), "resynced", f"REST /books snapshot after: {gap}")
        shard.lost = bool(missing)
        self.stats.resyncs += 1

    def _emit_continuity(self, assets: list[str], status: ContinuityStatus, reason: str) -> None:
        """One event per market, keyed by it like its frames; an asset of no known market has no book yet."""
        recv_ns = self.clock()
        by_market: dict[str, list[str]] = {}
        for asset in assets:
            market = self.markets.get(asset)
            if market is not None:
                by_market.setdefault(market, []).append(asset)
        for market, market_assets in by_market.items():
            event = continuity_event(market, tuple(market_assets), status, reason, recv_ns)
            self.sink.on_event(event, recv_ns, "pets")

    # ---- plumbing --------------------------------------------------------------------------------
    async def _send_operation(self, shard: _Shard, operation: str, assets: list[str]) -> None:
        if shard.conn is None:
            return  # the next (re)connect subscribes the shard's current assets
        message: dict[str, Any] = {"operation": operation, "assets_ids": assets}
        if self.config.custom_features:
            message["custom_feature_enabled"] = True
        with contextlib.suppress(ConnectionClosed):
            await shard.conn.send(msgspec.json.encode(message).decode())

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _shutdown(self) -> None:
        self._stopping.set()
        for shard in self._shards:
            if shard.conn is not None:
                with contextlib.suppress(ConnectionClosed):
                    await shard.conn.close()
        tasks = [s.task for s in self._shards if s.task]
        await asyncio.gather(*tasks, return_exceptions=True)
        self.sink.flush()
