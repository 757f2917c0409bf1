"""Recording the live market channel to a file (the format of `recording.py`).

The recorder is the WebSocket client with a file sink: the same sharding, watchdog, reconnects and
REST resyncs as live ingestion, so a recording holds exactly what md.book would have carried,
continuity events included. Messages that are not events go to `<out>.dead.jsonl` as DeadLetter
lines (created only when there is one), so nothing received is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

import msgspec

from pets.pipelines.polymarket.frames import MarketEvent, Origin
from pets.pipelines.polymarket.market_ws import ChannelStats, MarketChannel, MarketWsConfig
from pets.pipelines.polymarket.recording import annotate, open_recording
from pets.schemas.codec import encode
from pets.schemas.control import DeadLetter


class RecordSummary(msgspec.Struct, frozen=True):
    out: str
    assets: int
    frames: int
    dead_lettered: int
    reconnects: int
    resyncs: int


class RecordingSink:
    """A FrameSink appending every event to a recording file."""

    def __init__(
        self, path: Path, *, source: str = "recorder", on_frame: Callable[[], None] | None = None
    ) -> None:
        self.path = path
        self.on_frame = on_frame  # once per frame written (the command's progress)
        self.source = source
        self.frames = 0
        self.dead_lettered = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = open_recording(path, "wb")
        self._dead: IO[bytes] | None = None

    @property
    def dead_letter_path(self) -> Path:
        return self.path.with_name(self.path.name + ".dead.jsonl")

    def on_event(self, event: MarketEvent, recv_ns: int, origin: Origin) -> None:
        self._file.write(annotate(event.payload, recv_ns, origin) + b"\n")
        self.frames += 1
        if self.on_frame is not None:
            self.on_frame()

    def on_dead_letter(self, reason: str, payload: bytes, recv_ns: int) -> None:
        if self._dead is None:
            self._dead = self.dead_letter_path.open("ab")
        self._dead.write(encode(DeadLetter.from_bytes(self.source, reason, payload, ts_ns=recv_ns)) + b"\n")
        self.dead_lettered += 1

    def flush(self) -> None:
        self._file.flush()
        if self._dead is not None:
            self._dead.flush()

    def close(self) -> None:
        self._file.close()
        if self._dead is not None:
            self._dead.close()


async def record_async(
    config: MarketWsConfig,
    asset_ids: Iterable[str],
    out: Path,
    *,
    duration_s: float | None = None,
    on_frame: Callable[[], None] | None = None,
) -> RecordSummary:
    """Record until `duration_s` has passed or SIGINT/SIGTERM; the file is complete either way."""
    assets = list(dict.fromkeys(asset_ids))
    sink = RecordingSink(out, on_frame=on_frame)
    channel = MarketChannel(config, sink)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not in the main thread
            loop.add_signal_handler(signum, channel.stop)
    try:
        stats: ChannelStats = await channel.run(assets, duration_s=duration_s)
    finally:
        sink.close()
    return RecordSummary(
        out=str(out),
        assets=len(assets),
        frames=sink.frames,
        dead_lettered=sink.dead_lettered,
        reconnects=stats.reconnects,
        resyncs=stats.resyncs,
    )


def record(
    config: MarketWsConfig,
    asset_ids: Iterable[str],
    out: Path,
    *,
    duration_s: float | None = None,
    on_frame: Callable[[], None] | None = None,
) -> RecordSummary:
    """Blocking `record_async`."""
    return asyncio.run(record_async(config, asset_ids, out, duration_s=duration_s, on_frame=on_frame))
