"""run_embedded counts per frame (as `pets replay --to kafka` does) and says which books are stale."""

from __future__ import annotations

import json

from pets.pipelines.market_data.embedded import run_embedded
from pets.pipelines.simulator import simulated_frames
from pets.schemas.control import DeadLetter

ORPHAN = (
    b'{"event_type":"price_change","asset_id":"999","market":"0xfeed","timestamp":"1750000000200",'
    b'"changes":[{"price":"0.5","side":"BUY","size":"10"}]}'
)


def test_an_array_frame_of_bad_events_is_one_dead_letter_with_the_frame() -> None:
    dead: list[DeadLetter] = []
    summary = run_embedded([b"[1,2,3]"], dlq=dead.append)
    assert (summary.frames, summary.parsed, summary.dead_lettered) == (1, 0, 1)
    assert len(dead) == 1 and dead[0].raw_bytes() == b"[1,2,3]" and dead[0].reason


def test_parsed_and_dead_lettered_add_up_to_the_frames() -> None:
    good = list(simulated_frames(10, markets=1, seed=3, wire="changes"))
    two_good = b"[" + good[2] + b"," + good[3] + b"]"
    half_bad = b"[" + good[4] + b',{"event_type":"nope"}]'
    dead: list[DeadLetter] = []
    summary = run_embedded([*good[:2], two_good, half_bad, b"PONG"], dlq=dead.append)
    assert (summary.frames, summary.parsed, summary.dead_lettered) == (5, 3, 2)
    assert [(d.raw_bytes(), d.reason) for d in dead] == [
        (half_bad, "unknown event type 'nope'"),
        (b"PONG", "malformed JSON: venue control text 'PONG', not an event"),
    ]


def test_a_frame_with_a_bad_event_applies_none_of_its_events() -> None:
    frames = simulated_frames(40, markets=1, seed=3, wire="changes")
    book = frames[0]
    alone = run_embedded([book])
    change = next(f for f in frames if run_embedded([book, f]).assets != alone.assets)  # moves the top
    with_bad_array = run_embedded([book, b"[" + change + b',{"event_type":"nope"}]'])
    assert with_bad_array.assets == alone.assets


def test_books_without_a_snapshot_are_reported_stale() -> None:
    frames = [*simulated_frames(4, markets=1, seed=3, wire="changes"), ORPHAN]
    summary = run_embedded(frames)
    snapshotted = {json.loads(f)["asset_id"] for f in frames if json.loads(f)["event_type"] == "book"}
    assert len(snapshotted) == 2
    stale = {a: q.stale for a, q in summary.assets.items()}
    assert stale == {**dict.fromkeys(snapshotted, False), "999": True}
    assert summary.assets["999"].best_bid is not None  # the contract fields stay as they are
