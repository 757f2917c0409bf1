"""Issue 12 item 5: the embedded main job and the Kafka market_state flow judge book prices by one rule.

On real recordings with tail prices on the 0.001 grid (the venue's tail tick, whose
`tick_size_change` the recordings lack) and a few mid-range prices off the 0.01 grid: `pets run`'s
loop and the market_state flow, both given the recording's market universe, must accept and reject
the same frames for the same reasons.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

from pets.flows.market_state import build_flow
from pets.pipelines.polymarket.frames import events_of
from pets.runtime import sources
from pets.runtime.loop import TradingLoop
from pets.schemas.config import load_config
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import TopOfBook
from pets.settings import Settings

# small recordings with tail prices on the 0.001 grid (and, in the last two, mid-range ones off 0.01)
RECORDINGS = (
    "20250619_mlb-min-cin-2025-06-19.jsonl.gz",
    "20250624_mlb-lad-col-2025-06-24.jsonl.gz",
    "20250624_mlb-pit-mil-2025-06-24.jsonl.gz",
)


def _prices(frame: bytes) -> list[Decimal]:
    event = json.loads(frame)
    levels = [*event.get("bids", []), *event.get("asks", []), *event.get("changes", [])]
    return [Decimal(level["price"]) for level in levels]


def _plainly_valid(frame: bytes) -> bool:
    """Every price on the 0.01 grid, or in the tail range on the 0.001 grid (arithmetic of its own)."""
    return all(
        p % Decimal("0.01") == 0
        or (p % Decimal("0.001") == 0 and (p < Decimal("0.04") or p > Decimal("0.96")))
        for p in _prices(frame)
    )


def _embedded_rejections(settings: Settings, path: Path) -> dict[int, str]:
    """Frame index -> reason, as `pets run --replay` judges them."""
    source = sources.replay([path])
    loop = TradingLoop(load_config(settings.config_dir), source.markets)
    rejected: dict[int, str] = {}
    for n, frame in enumerate(source.frames):
        before = dict(loop.stats.dead_reasons)
        loop.on_frame(frame)
        new = [r for r, count in loop.stats.dead_reasons.items() if count > before.get(r, 0)]
        if new:
            rejected[n] = new[0]
    return rejected


def _flow_rejections(settings: Settings, path: Path) -> tuple[dict[int, str], list[TopOfBook]]:
    """Frame index -> reason, as the market_state flow judges the md.book events of a Kafka replay."""
    source = sources.replay([path])
    messages = [
        KafkaSourceMessage(
            key=event.key.encode(), value=event.payload, topic="md.book", offset=n, partition=0
        )
        for n, frame in enumerate(source.frames)
        for event in events_of(frame)
    ]
    tops: list[TopOfBook] = []
    dead: list[DeadLetter] = []
    flow = build_flow(
        settings,
        TestingSource(messages),
        TestingSink(tops),
        dlq_sink=TestingSink(dead),
        db_sink=TestingSink([]),
        market_infos=source.markets,
    )
    run_main(flow)
    return {d.offset: d.reason[:80] for d in dead if d.offset is not None}, tops  # as the loop counts them


@pytest.mark.parametrize("name", RECORDINGS)
def test_both_paths_accept_the_same_real_frames(settings: Settings, shared_data: Path, name: str) -> None:
    path = shared_data / "polymarket" / "l2" / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    settings = replace(settings, postgres_dsn=None)
    frames = list(sources.replay([path]).frames)
    embedded = _embedded_rejections(settings, path)
    flow, tops = _flow_rejections(settings, path)

    assert flow == embedded
    assert all(not _plainly_valid(frames[n]) for n in embedded), "a plainly valid frame was rejected"
    tail = [n for n, f in enumerate(frames) if not all(p % Decimal("0.01") == 0 for p in _prices(f))]
    accepted_tail = [n for n in tail if n not in embedded]
    assert accepted_tail, "the tail frames on the 0.001 grid are accepted"
    assert any(t.tick_size == Decimal("0.001") for t in tops)
