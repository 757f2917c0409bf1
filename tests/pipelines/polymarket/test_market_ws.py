"""The market-channel client against the local CLOB serving a real recording: gaps, resyncs, Kafka."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from pets.pipelines import kafka_io
from pets.pipelines.polymarket.frames import parse_event
from pets.pipelines.polymarket.kafka_sink import ORIGIN_HEADER, KafkaFrameSink
from pets.pipelines.polymarket.market_ws import MarketChannel, MarketWsConfig
from pets.pipelines.polymarket.recorder import RecordingSink
from pets.pipelines.polymarket.recording import RecordedFrame, read_recording
from pets.pipelines.polymarket.replayer import replay_to_sink
from pets.pipelines.venue_sim.clob_server import ClobServer, VenueBook, serve_clob, simulated_tape
from pets.schemas.codec import decode
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import Continuity
from pets.settings import Settings


def _continuity(payload: bytes) -> Continuity:
    result: Continuity = decode(Continuity, payload)
    return result


def _by_key(frames: list[tuple[str, bytes]]) -> dict[str, list[bytes]]:
    grouped: dict[str, list[bytes]] = defaultdict(list)
    for key, payload in frames:
        grouped[key].append(payload)
    return dict(grouped)


def _rebuild(frames: list[RecordedFrame], asset: str) -> dict[str, Any]:
    """The book a consumer of the stream ends with (snapshots replace, deltas update)."""
    book = VenueBook(asset)
    for frame in frames:
        event = parse_event(frame.payload)
        if event.event_type != "continuity" and asset in event.asset_ids:
            book.apply(json.loads(frame.payload))
    body = book.rest_body()
    return {"bids": body["bids"], "asks": body["asks"]}


@pytest.mark.shared_data
def test_client_survives_disconnect_and_stall_and_the_recording_replays_exactly(
    recording: tuple[Path, dict[str, Any]], stream: Any, tmp_path: Path
) -> None:
    path, meta = recording
    out = tmp_path / "live.jsonl.gz"
    sink = RecordingSink(out)
    with serve_clob([path]) as server:
        server.disconnect_at(80, missed=15)
        server.stall_at(180, missed=15)
        channel = asyncio.run(stream(server, meta["asset_ids"], sink))
        sink.close()
        served = [s.payload for s in server.served]
        rest_served = list(server.rest_served)
        final_books = {a: server.book(a) for a in meta["asset_ids"]}
    recorded = list(read_recording(out))
    assert [f.payload for f in recorded if f.origin == "ws"] == served  # byte-exact, arrival order
    assert channel.stats.gaps == channel.stats.resyncs == 2 and channel.stats.reconnects == 2
    assert server.played == len(server.tape)

    rest = [f for f in recorded if f.origin == "rest"]
    assert [json.loads(f.payload) for f in rest] == [{"event_type": "book", **b} for b in rest_served]
    marks = [(i, _continuity(f.payload)) for i, f in enumerate(recorded) if f.origin == "pets"]
    assert [(c.status, c.reason.split(":")[0].split(" for")[0]) for _, c in marks] == [
        ("lost", "socket closed"),
        ("resynced", "REST /books snapshot after"),
        ("lost", "silent"),
        ("resynced", "REST /books snapshot after"),
    ]
    # one event for the market (the recording's frames say "market": ""), naming both of its tokens
    assert all(c.market == "" and sorted(c.asset_ids) == sorted(meta["asset_ids"]) for _, c in marks)
    for (lost_at, _), (synced_at, _) in ((marks[0], marks[1]), (marks[2], marks[3])):
        snapshots = [
            parse_event(f.payload).asset_ids for f in recorded[lost_at:synced_at] if f.origin == "rest"
        ]
        assert sorted(snapshots) == sorted((a,) for a in meta["asset_ids"])  # one REST book per token per gap
    for asset in meta["asset_ids"]:
        final = final_books[asset]
        assert final is not None
        assert _rebuild(recorded, asset) == {"bids": final["bids"], "asks": final["asks"]}

    replayed_path = tmp_path / "replayed.jsonl.gz"
    replayed = RecordingSink(replayed_path)
    stats = replay_to_sink([out], replayed)
    replayed.close()
    assert stats.frames == stats.produced == len(recorded) and stats.dead_lettered == 0
    # same bytes, receive times and origins, but for the market the replay gives frames without one:
    # the recording's id (no meta file: its name), as `pets run --replay` does
    named = [
        RecordedFrame(f.payload.replace(b'"market":""', b'"market":"live"', 1), f.recv_ns, f.origin)
        for f in recorded
    ]
    assert list(read_recording(replayed_path)) == named


async def _until(condition: Any, what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.mark.shared_data
def test_shards_pings_and_dead_letters(recording: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, meta = recording
    sink = RecordingSink(tmp_path / "sharded.jsonl")
    garbage = ["not a frame", '[{"event_type":"book","asset_id":"1"']

    async def scenario(server: ClobServer) -> MarketChannel:
        config = MarketWsConfig(server.ws_url, server.rest_url, shard_size=1, ping_interval_s=0.05)
        channel = MarketChannel(config, sink)
        task = asyncio.create_task(channel.run(meta["asset_ids"]))
        await _until(lambda: server.tape_done.is_set() and channel.stats.events == len(server.served), "tape")
        await _until(lambda: server.pings >= 2 and channel.stats.pongs >= 2, "PING/PONG")
        for message in [*garbage, "NO NEW ASSETS"]:
            await asyncio.to_thread(server.inject, message)
        await _until(lambda: channel.stats.no_new_assets == 2, "NO NEW ASSETS on both connections")
        assert channel.stats.dead_letters == 2 * len(garbage)  # a status message is not a bad frame
        channel.stop()
        await task
        return channel

    with serve_clob([path]) as server:
        asyncio.run(scenario(server))
        per_connection: dict[int, set[str]] = defaultdict(set)
        for frame in server.served:
            per_connection[frame.connection].add(json.loads(frame.payload)["asset_id"])
    sink.close()
    assert server.connections == 2  # shard_size=1: one connection per token
    assert sorted(sorted(v) for v in per_connection.values()) == sorted([a] for a in meta["asset_ids"])
    letters = [decode(DeadLetter, line) for line in sink.dead_letter_path.read_bytes().splitlines()]
    assert sorted(letter.raw_bytes() for letter in letters) == sorted(m.encode() for m in garbage * 2)
    reasons = {letter.raw_bytes(): letter.reason for letter in letters}
    assert reasons[b"not a frame"].startswith("not a market-channel event")
    assert reasons[garbage[1].encode()].startswith("malformed JSON array")


@pytest.mark.integration
@pytest.mark.shared_data
def test_kafka_messages_equal_the_frames_served(
    recording: tuple[Path, dict[str, Any]],
    stream: Any,
    settings: Settings,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    path, meta = recording
    local = dataclasses.replace(settings, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    sink = KafkaFrameSink.from_settings(local, source="test_market_ws")
    try:
        with serve_clob([path]) as server:
            server.disconnect_at(100, missed=10)
            asyncio.run(stream(server, meta["asset_ids"], sink))
            served = [(json.loads(s.payload)["market"], s.payload) for s in server.served]
    finally:
        sink.close()
    topic = f"{topic_prefix}md.book"
    expected = (
        len(served) + 2 + len(meta["asset_ids"])
    )  # + lost and resynced of the market, a REST book per token
    consumer = kafka_io.consumer(local)
    try:
        from kafka import TopicPartition

        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()])
        messages: list[Any] = []
        deadline = time.monotonic() + 20
        while len(messages) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                messages.extend(batch)
    finally:
        consumer.close()
    assert len(messages) == expected
    by_origin: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    for message in messages:
        origin = dict(message.headers)[ORIGIN_HEADER].decode()
        by_origin[origin].append((message.key.decode(), message.value))
    assert _by_key(by_origin["ws"]) == _by_key(served)  # per-key order is Kafka's guarantee
    statuses = {k: [_continuity(v).status for v in vs] for k, vs in _by_key(by_origin["pets"]).items()}
    assert statuses == {"": ["lost", "resynced"]}  # keyed by the frames' market ("" in the recording)
    rest = sorted(parse_event(v).asset_ids for k, v in by_origin["rest"] if k == "")
    assert rest == sorted((a,) for a in meta["asset_ids"])


def test_simulated_markets_gaps_resync_and_final_books(stream: Any, tmp_path: Path) -> None:
    """Works on a fresh clone (no recordings): simulated markets in the current `price_changes` schema."""
    tape = simulated_tape(600, markets=2)
    assets = sorted({a for frame in tape for a in frame.asset_ids})
    out = tmp_path / "sim.jsonl"
    sink = RecordingSink(out)
    with serve_clob(tape) as server:
        server.disconnect_at(150, missed=30)
        server.stall_at(400, missed=30)
        channel = asyncio.run(stream(server, assets, sink))
        sink.close()
        served = [s.payload for s in server.served]
        final_books = {a: server.book(a) for a in assets}
    recorded = list(read_recording(out))
    assert [f.payload for f in recorded if f.origin == "ws"] == served
    assert channel.stats.gaps == channel.stats.resyncs == 2
    multi = [parse_event(p) for p in served if b"price_changes" in p]
    assert multi and all(e.key == e.market and e.market and len(e.asset_ids) == 2 for e in multi)
    for asset in assets:
        final = final_books[asset]
        assert final is not None
        assert _rebuild(recorded, asset) == {"bids": final["bids"], "asks": final["asks"]}


def test_subscribe_and_unsubscribe_on_a_live_connection(tmp_path: Path) -> None:
    tape = simulated_tape(300, markets=1)
    yes, no = tape[0].asset_ids[0], tape[1].asset_ids[0]
    sink = RecordingSink(tmp_path / "ops.jsonl")

    async def scenario(server: ClobServer) -> None:
        channel = MarketChannel(MarketWsConfig(server.ws_url, server.rest_url), sink)
        task = asyncio.create_task(channel.run([yes]))
        await _until(lambda: server.played == 100, "the pause")
        await channel.subscribe([no])
        await _until(lambda: list(server.subscriptions().values()) == [{yes, no}], "subscribe")
        await channel.unsubscribe([yes])
        await _until(lambda: list(server.subscriptions().values()) == [{no}], "unsubscribe")
        server.resume()
        await _until(lambda: server.tape_done.is_set() and channel.stats.events == len(server.served), "tape")
        channel.stop()
        await task

    with serve_clob(tape) as server:
        server.pause_at(100)
        asyncio.run(scenario(server))
        served = [parse_event(s.payload) for s in server.served]
    assert server.connections == 1  # both operations went over the open connection
    snapshot = next(i for i, e in enumerate(served) if e.event_type == "book" and e.asset_ids == (no,))
    assert all(yes in e.asset_ids for e in served[:snapshot])  # before: only what was subscribed
    after = served[snapshot + 1 :]  # the tape was paused while the operations went through
    assert after and all(no in e.asset_ids for e in after)
