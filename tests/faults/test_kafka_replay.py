"""Issue 12 item 6: `pets replay --to kafka` behaves like `pets run --replay`.

Two real recordings of the same evening whose frames say `"market":""` are replayed into Kafka; the
replay must publish their market universe on md.markets, give their frames the recordings' market
ids, and merge the two files by venue time. Then the market_state and bots flows (their build_flow
with the real Kafka source, reading what is there) must turn it into order intents for both markets.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from bytewax.testing import TestingSink, run_main
from click.testing import CliRunner

from pets.cli import main
from pets.flows import bots, market_state
from pets.flows.recovery import recovery_store
from pets.flows.trading_io import Routed, kafka_source, read_topics
from pets.pipelines.kafka_io import ensure_topics
from pets.pipelines.polymarket.frames import MarketEvent, Origin
from pets.pipelines.polymarket.replayer import replay_to_sink
from pets.schemas.market_data import MarketInfo
from pets.schemas.orders import OrderIntent
from pets.settings import Settings

NAMES = ("20250624_mlb-chc-stl-2025-06-24", "20250624_mlb-pit-mil-2025-06-24")  # both "market":""


def _recordings(shared_data: Path) -> list[Path]:
    paths = [shared_data / "polymarket" / "l2" / f"{name}.jsonl.gz" for name in NAMES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"recordings not found: {missing}")
    return paths


def _unsettled(paths: list[Path], tmp_path: Path) -> list[Path]:
    """The recordings without their settlement (in tmp_path). This test's bots flow reads the whole
    backlog after market_state has run, and a market's closed state on md.markets can then reach it
    before the market's last tops on md.tob (docs/running.md, "What differs"); settlement through the
    flows is tested as they run, in tests/e2e/test_parity.py."""
    out = []
    for path in paths:
        target = tmp_path / path.name
        target.write_bytes(path.read_bytes())
        meta = path.with_name(path.name.replace(".jsonl.gz", ".meta.json"))
        fields = {k: v for k, v in json.loads(meta.read_text()).items() if k != "settled_winner_asset_id"}
        target.with_name(meta.name).write_text(json.dumps(fields))
        out.append(target)
    return out


def _slugs(paths: list[Path]) -> list[str]:
    """Each recording's market id as its meta file gives it (no Gamma id here: the slug)."""
    metas = [json.loads(p.with_name(p.name.replace(".jsonl.gz", ".meta.json")).read_text()) for p in paths]
    assert all(m["gamma_market_id"] == "" for m in metas)
    return [m["slug"] for m in metas]


class _Events:
    """A FrameSink that keeps what it is given, in order."""

    def __init__(self) -> None:
        self.events: list[MarketEvent] = []

    def on_event(self, event: MarketEvent, recv_ns: int, origin: Origin) -> None:
        self.events.append(event)

    def on_dead_letter(self, reason: str, payload: bytes, recv_ns: int) -> None:
        raise AssertionError(reason)

    def flush(self) -> None:
        pass


def test_several_recordings_play_merged_by_venue_time_with_their_market_ids(shared_data: Path) -> None:
    paths = _recordings(shared_data)
    sink = _Events()
    replay_to_sink(paths, sink)
    stamps = [int(json.loads(e.payload)["timestamp"]) for e in sink.events]
    assert stamps == sorted(stamps)  # one venue clock across the files
    markets = [e.market for e in sink.events]
    assert set(markets) == set(_slugs(paths))
    first, other = markets[0], next(m for m in markets if m != markets[0])
    last_of_first = len(markets) - 1 - markets[::-1].index(first)
    assert markets.index(other) < last_of_first  # interleaved, not one file after the other
    assert all(e.key == e.market for e in sink.events)  # keyed by the market they were given


@pytest.mark.integration
def test_a_kafka_replay_of_recordings_reaches_the_bots_and_produces_order_intents(
    shared_data: Path, prefixed_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    paths = _unsettled(_recordings(shared_data), tmp_path)
    settings = prefixed_settings
    monkeypatch.setenv("PETS_KAFKA_BOOTSTRAP", settings.require_kafka())
    monkeypatch.setenv("PETS_TOPIC_PREFIX", settings.topic_prefix)
    result = CliRunner().invoke(main, ["replay", *map(str, paths), "--to", "kafka", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["dead_lettered"] == 0 and summary["produced"] > 0

    slugs = _slugs(paths)
    universe = [m for m in read_topics(settings, ["md.markets"]) if isinstance(m, MarketInfo)]
    assert {m.condition_id for m in universe if not m.closed} == set(slugs)

    ensure_topics(settings, ["md.tob", "dlq.market_data", *bots.INPUT_TOPICS, "dlq.trading"])
    no_db = replace(settings, postgres_dsn=None)
    out: list[Routed] = []
    recovery = recovery_store(tmp_path / "bots")

    def run_bots() -> None:
        """What the bots flow has read by now (a tailing flow would read it as it comes)."""
        source = kafka_source(no_db, bots.INPUT_TOPICS, tail=False)
        flow = bots.build_flow(no_db, source, TestingSink(out))
        run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)

    run_bots()  # running before the books are: the replay's md.markets comes first
    run_main(market_state.build_flow(no_db, tail=False))  # md.book + md.markets -> md.tob on Kafka
    tops = list(read_topics(settings, ["md.tob"]))
    assert {t.market for t in tops} == set(slugs)
    run_bots()
    intents: list[Any] = [r.message for r in out if r.topic == "order.intent"]
    assert all(isinstance(i, OrderIntent) for i in intents)
    assert {i.market for i in intents} == set(slugs), [r for r in out if r.topic != "order.intent"][:3]
