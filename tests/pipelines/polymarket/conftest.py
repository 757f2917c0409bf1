"""Fixtures for the ingestion tests: a real recording and a way to stream it through the real client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from pets.pipelines.polymarket.frames import FrameSink
from pets.pipelines.polymarket.market_ws import MarketChannel, MarketWsConfig
from pets.pipelines.venue_sim.clob_server import ClobServer

RECORDING = "20250624_mlb-chc-stl-2025-06-24"  # 278 frames, two tokens

Stream = Callable[..., Awaitable[MarketChannel]]


@pytest.fixture
def recording(shared_data: Path) -> tuple[Path, dict[str, Any]]:
    path = shared_data / "polymarket/l2" / f"{RECORDING}.jsonl.gz"
    return path, json.loads(path.with_name(f"{RECORDING}.meta.json").read_text())


def fast_config(server: ClobServer, **overrides: Any) -> MarketWsConfig:
    """Test timings: a 1 s silence watchdog, quick reconnects and pings."""
    options: dict[str, Any] = {
        "silence_timeout_s": 1.0,
        "reconnect_initial_s": 0.05,
        "ping_interval_s": 0.2,
        **overrides,
    }
    return MarketWsConfig(server.ws_url, server.rest_url, **options)


async def stream_until_served(
    server: ClobServer, assets: Iterable[str], sink: FrameSink, timeout_s: float = 30, **overrides: Any
) -> MarketChannel:
    """Run the client until the tape is over, every served frame arrived and every gap was resynced."""
    channel = MarketChannel(fast_config(server, **overrides), sink)
    task = asyncio.create_task(channel.run(assets))
    deadline = time.monotonic() + timeout_s
    while not (
        server.tape_done.is_set()
        and channel.stats.events == len(server.served)
        and channel.stats.resyncs == channel.stats.gaps
    ):
        if task.done() or time.monotonic() > deadline:
            channel.stop()
            await task
            raise AssertionError(f"stream incomplete: {channel.stats}, served {len(server.served)}")
        await asyncio.sleep(0.02)
    channel.stop()
    await task
    return channel


@pytest.fixture
def stream() -> Stream:
    return stream_until_served
