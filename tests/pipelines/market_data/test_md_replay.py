"""Replaying the real L2 recordings and the simulated market through parse + book + top of book."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from pets.pipelines.market_data.embedded import run_embedded
from pets.pipelines.market_data.market import MarketStateEngine
from pets.pipelines.market_data.parser import FrameParser, Snapshot
from pets.pipelines.simulator import MarketSimulator, SimParams, Wire, simulated_frames
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import TopOfBook


def _frames(path: Path) -> list[bytes]:
    with gzip.open(path) as lines:
        return [line.rstrip(b"\n") for line in lines if line.strip()]


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@pytest.mark.shared_data
def test_every_recording_replays_to_its_final_top_of_book(l2_recordings: list[Path]) -> None:
    assert len(l2_recordings) == 20
    for path in l2_recordings:
        meta = json.loads(path.with_name(path.name.replace(".jsonl.gz", ".meta.json")).read_text())
        frames = _frames(path)
        dead: list[DeadLetter] = []
        summary = run_embedded(frames, dlq=dead.append)
        assert (summary.frames, summary.parsed, summary.dead_lettered) == (
            meta["frames"],
            meta["frames"],
            0,
        ), path
        assert dead == []
        expected = {
            asset: {
                "best_bid": _decimal(top["best_bid"]),
                "best_ask": _decimal(top["best_ask"]),
                "stale": False,
            }
            for asset, top in meta["final_top_of_book"].items()
        }
        got = {asset: msgspec.structs.asdict(quote) for asset, quote in summary.assets.items()}
        assert got == expected, path.name


@pytest.mark.shared_data
def test_books_are_never_crossed_right_after_a_snapshot(l2_recordings: list[Path]) -> None:
    parser, snapshots = FrameParser(), 0
    for path in l2_recordings:
        engine, tops = MarketStateEngine(), list[TopOfBook]()
        for raw in _frames(path):
            for event in parser.parse(raw):
                assert not isinstance(event, DeadLetter), event.reason
                assert engine.on_event(event, tops) is None
                if isinstance(event, Snapshot):
                    snapshots += 1
                    book = engine.book(event.asset_id)
                    assert book is not None and not book.crossed and not book.stale, (path.name, event.ts_ms)
    assert snapshots == 2041


@pytest.mark.shared_data
def test_each_recorded_mirrored_update_publishes_both_tokens_once(l2_recordings: list[Path]) -> None:
    path = l2_recordings[0]
    tops: list[TopOfBook] = []
    run_embedded(_frames(path), on_top_of_book=tops.append)
    per_key: dict[tuple[str, int, int], int] = {}
    for top in tops:
        assert top.paired_asset_id is not None
        per_key[top.asset_id, top.ts_ms, top.seq] = per_key.get((top.asset_id, top.ts_ms, top.seq), 0) + 1
    assert set(per_key.values()) == {1}
    for asset in {t.asset_id for t in tops}:
        seqs = [t.seq for t in tops if t.asset_id == asset]
        assert seqs == list(range(1, len(seqs) + 1))  # no gaps, no repeats


@pytest.mark.parametrize("wire", ["changes", "price_changes"])
def test_simulated_frames_rebuild_the_simulators_books_exactly(wire: Wire) -> None:
    sim = MarketSimulator(SimParams.feed(3, 11, wire))
    frames = sim.take(4000)
    assert frames == simulated_frames(4000, markets=3, seed=11, wire=wire)
    assert frames != simulated_frames(4000, markets=3, seed=12, wire=wire)
    parser, engine, tops = FrameParser(), MarketStateEngine(sim.markets), list[TopOfBook]()
    for raw in frames:
        for event in parser.parse(raw):
            assert not isinstance(event, DeadLetter), event.reason
            assert engine.on_event(event, tops) is None
    for info in sim.markets:  # the simulator's own books are the oracle
        for token in info.token_ids:
            book, (bids, asks) = engine.book(token), sim.book(token)
            assert book is not None and not book.crossed
            assert {lvl.price: lvl.size for lvl in book.bids()} == bids
            assert {lvl.price: lvl.size for lvl in book.asks()} == asks
        yes, no = (sim.book(token) for token in info.token_ids)
        assert no[1] == {1 - price: size for price, size in yes[0].items()}  # YES bid at p = NO ask at 1 - p


def test_run_embedded_summary_is_the_replay_json() -> None:
    frames = [*simulated_frames(50, markets=1, seed=3, wire="changes"), b"PONG", b'{"event_type":"nope"}']
    dead: list[DeadLetter] = []
    summary = run_embedded(frames, dlq=dead.append)
    assert (summary.frames, summary.parsed, summary.dead_lettered) == (52, 50, 2)
    assert [d.reason for d in dead] == [
        "malformed JSON: venue control text 'PONG', not an event",
        "unknown event type 'nope'",
    ]
    encoded = json.loads(msgspec.json.encode(summary))
    assert set(encoded) == {"frames", "parsed", "dead_lettered", "assets"}
    for quote in encoded["assets"].values():
        assert set(quote) == {"best_bid", "best_ask", "stale"}
        assert quote["stale"] is False
        sides = (quote["best_bid"], quote["best_ask"])
        assert all(v is None or (isinstance(v, str) and Decimal(v) > 0) for v in sides)
