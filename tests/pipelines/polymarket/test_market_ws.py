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
from pets.pipelines.polymarket.kafka_sink import ORIGIN_HEADER, KafkaFrameSink
from pets.pipelines.polymarket.recorder import RecordingSink
from pets.pipelines.polymarket.recording import RecordedFrame, read_recording
from pets.pipelines.polymarket.replayer import replay_to_sink
from pets.pipelines.venue_sim.clob_server import ClobServer, VenueBook, serve_clob
from pets.schemas.codec import decode
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import Continuity
from pets.settings import Settings

pytestmark = pytest.mark.shared_data


def _continuity(payload: bytes) -> Continuity:
    result: Continuity = decode(Continuity, payload)
    return result


def _by_asset(frames: list[tuple[str, bytes]]) -> dict[str, list[bytes]]:
    grouped: dict[str, list[bytes]] = defaultdict(list)
    for key, payload in frames:
        grouped[key].append(payload)
    return dict(grouped)


def _rebuild(frames: list[RecordedFrame], asset: str) -> dict[str, Any]:
    """The book a consumer of the stream ends with (snapshots replace, deltas update)."""
    book = VenueBook(asset)
    for frame in frames:
        event = json.loads(frame.payload)
        if event["event_type"] != "continuity" and event.get("asset_id") == asset:
            book.apply(event)
    body = book.rest_body()
    return {"bids": body["bids"], "asks": body["asks"]}


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
    for asset in meta["asset_ids"]:
        marks = [
            (i, _continuity(f.payload)) for i, f in enumerate(recorded) if f.origin == "pets" and asset in f.payload.decode()
        ]
        assert [(c.status, c.reason.split(":")[0].split(" for")[0]) for _, c in marks] == [
            ("lost", "socket closed"),
            ("resynced", "REST /books snapshot after"),
            ("lost", "silent"),
            ("resynced", "REST /books snapshot after"),
        ]
        assert all(c.asset_ids == (asset,) for _, c in marks)
        for (lost_at, _), (synced_at, _) in ((marks[0], marks[1]), (marks[2], marks[3])):
            snapshots = [f for f in recorded[lost_at:synced_at] if f.origin == "rest" and asset in f.payload.decode()]
            assert len(snapshots) == 1  # exactly one REST book of this asset inside each gap
        final = final_books[asset]
        assert final is not None
        assert _rebuild(recorded, asset) == {"bids": final["bids"], "asks": final["asks"]}

    replayed_path = tmp_path / "replayed.jsonl.gz"
    replayed = RecordingSink(replayed_path)
    stats = replay_to_sink([out], replayed)
    replayed.close()
    assert stats.frames == stats.produced == len(recorded) and stats.dead_lettered == 0
    assert list(read_recording(replayed_path)) == recorded  # same bytes, receive times and origins


def test_shards_pings_and_dead_letters(recording: tuple[Path, dict[str, Any]], stream: Any, tmp_path: Path) -> None:
    path, meta = recording
    sink = RecordingSink(tmp_path / "sharded.jsonl")

    async def scenario(server: ClobServer) -> Any:
        task = asyncio.create_task(stream(server, meta["asset_ids"], sink, shard_size=1, ping_interval_s=0.05))
        while len(server.served) < 10:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.inject, "not a frame")
        await asyncio.to_thread(server.inject, '[{"event_type":"book","asset_id":"1"')
        return await task

    with serve_clob([path]) as server:
        channel = asyncio.run(scenario(server))
        connections = {s.connection for s in server.served}
        per_connection = {
            n: {json.loads(s.payload)["asset_id"] for s in server.served if s.connection == n} for n in connections
        }
    sink.close()
    assert server.connections == 2 and len(per_connection) == 2
    assert sorted(sorted(v) for v in per_connection.values()) == sorted([a] for a in meta["asset_ids"])
    assert server.pings > 0 and channel.stats.pongs > 0
    letters = [decode(DeadLetter, line) for line in sink.dead_letter_path.read_bytes().splitlines()]
    assert {letter.raw_bytes() for letter in letters} == {b"not a frame", b'[{"event_type":"book","asset_id":"1"'}
    assert len(letters) == 4  # each injected message reached both connections
    assert all("malformed" in letter.reason or "not a market-channel event" in letter.reason for letter in letters)


@pytest.mark.integration
def test_kafka_messages_equal_the_frames_served(
    recording: tuple[Path, dict[str, Any]], stream: Any, settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    path, meta = recording
    local = dataclasses.replace(settings, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    sink = KafkaFrameSink.from_settings(local, source="test_market_ws")
    try:
        with serve_clob([path]) as server:
            server.disconnect_at(100, missed=10)
            asyncio.run(stream(server, meta["asset_ids"], sink))
            served = [(json.loads(s.payload)["asset_id"], s.payload) for s in server.served]
    finally:
        sink.close()
    topic = f"{topic_prefix}md.book"
    expected = len(served) + 2 * len(meta["asset_ids"]) + len(meta["asset_ids"])  # + lost/resynced + REST books
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
    assert _by_asset(by_origin["ws"]) == _by_asset(served)  # per-key order is Kafka's guarantee
    statuses = {k: [_continuity(v).status for v in vs] for k, vs in _by_asset(by_origin["pets"]).items()}
    assert statuses == {a: ["lost", "resynced"] for a in meta["asset_ids"]}
    assert sorted(k for k, _ in by_origin["rest"]) == sorted(meta["asset_ids"])
