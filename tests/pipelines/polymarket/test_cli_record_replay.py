"""`pets record` against the local venue and `pets replay` to the embedded pipeline and to Kafka."""

from __future__ import annotations

import gzip
import json
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kafka import TopicPartition

from pets.cli import main
from pets.pipelines import kafka_io
from pets.pipelines.polymarket.recording import read_recording
from pets.pipelines.venue_sim.clob_server import serve_clob
from pets.pipelines.venue_sim.gamma_server import serve_gamma
from pets.schemas.codec import decode
from pets.schemas.control import DeadLetter
from pets.settings import load_settings

pytestmark = pytest.mark.shared_data


def _decimal(value: float | None) -> str | None:
    return None if value is None else str(Decimal(str(value)))


def test_replay_embedded_ends_at_the_recorded_final_books(recording: tuple[Path, dict[str, Any]]) -> None:
    path, meta = recording
    result = CliRunner().invoke(main, ["replay", str(path), "--to", "embedded", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["frames"] == meta["frames"] and summary["dead_lettered"] == 0
    final = {
        asset: {"best_bid": _decimal(tob["best_bid"]), "best_ask": _decimal(tob["best_ask"]), "stale": False}
        for asset, tob in meta["final_top_of_book"].items()
    }
    assert summary["assets"] == final
    assert summary["frames"] == summary["parsed"] + summary["dead_lettered"] and summary["truncated"] == []


def test_replay_dead_letters_bad_lines_and_still_succeeds(
    recording: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, _ = recording
    lines = gzip.decompress(path.read_bytes()).splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"\n".join([*lines[:20], b'{"event_type":"book","asset_id":', *lines[20:40]]) + b"\n")
    letters = tmp_path / "dead.jsonl"
    result = CliRunner().invoke(main, ["replay", str(broken), "--json", "--dead-letters", str(letters)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["frames"] == 41 and summary["dead_lettered"] >= 1
    dead = [decode(DeadLetter, line) for line in letters.read_bytes().splitlines()]
    assert any(d.raw_bytes() == b'{"event_type":"book","asset_id":' for d in dead)
    assert all(d.reason for d in dead)


def test_record_by_market_slug_then_replay_gives_the_served_frames(
    recording: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, meta = recording
    market = {
        "id": "900001",
        "conditionId": "0x" + "ab" * 32,
        "slug": meta["slug"],
        "clobTokenIds": json.dumps(meta["asset_ids"]),
        "outcomes": '["Cubs", "Cardinals"]',
    }
    out = tmp_path / "recorded.jsonl.gz"
    with serve_gamma([market]) as gamma, serve_clob([path]) as clob:
        monkeypatch.setenv("PETS_GAMMA_URL", gamma.url)
        monkeypatch.setenv("PETS_CLOB_URL", clob.rest_url)
        monkeypatch.setenv("PETS_WS_MARKET_URL", clob.ws_url)
        args = ["record", "--markets", meta["slug"], "--out", str(out), "--duration", "2", "--json"]
        result = CliRunner().invoke(main, args)
        served = [s.payload for s in clob.served]
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["frames"] == len(served) == meta["frames"]
    recorded = list(read_recording(out))
    assert [f.payload for f in recorded] == served
    assert all(f.recv_ns is not None and f.origin == "ws" for f in recorded)
    replayed = CliRunner().invoke(main, ["replay", str(out), "--json"])
    direct = CliRunner().invoke(main, ["replay", str(path), "--json"])
    assert replayed.exit_code == 0 and json.loads(replayed.output) == json.loads(direct.output)


@pytest.mark.integration
def test_replay_to_kafka_produces_the_recorded_frames(
    recording: tuple[Path, dict[str, Any]],
    kafka_bootstrap: str,
    topic_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, meta = recording
    monkeypatch.setenv("PETS_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("PETS_TOPIC_PREFIX", topic_prefix)
    result = CliRunner().invoke(main, ["replay", str(path), "--to", "kafka", "--speed", "max", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    frames = [f.payload for f in read_recording(path)]
    assert summary["produced"] == len(frames) and summary["topic"] == f"{topic_prefix}md.book"
    market_id = meta["gamma_market_id"] or meta["slug"]  # what "market":"" frames are given
    frames = [f.replace(b'"market":""', b'"market":"' + market_id.encode() + b'"', 1) for f in frames]
    winner = meta.get("settled_winner_asset_id")
    if winner:  # the Gamma state says it resolved: the venue's event follows the last frame
        resolved = {
            "event_type": "market_resolved",
            "id": market_id,
            "market": market_id,
            "assets_ids": meta["asset_ids"],
            "winning_asset_id": winner,
            "timestamp": str(meta["last_ts_ms"]),
        }
        frames.append(json.dumps(resolved, separators=(",", ":")).encode())
    assert summary["resolved"] == (1 if winner else 0)
    consumer = kafka_io.consumer(load_settings())
    got: dict[str, list[bytes]] = defaultdict(list)
    try:
        topic = summary["topic"]
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()])
        deadline = time.monotonic() + 20
        while sum(map(len, got.values())) < len(frames) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                for message in batch:
                    got[message.key.decode()].append(message.value)
    finally:
        consumer.close()
    expected: dict[str, list[bytes]] = defaultdict(list)
    for frame in frames:
        expected[json.loads(frame)["market"]].append(frame)  # md.book is keyed by market
    assert got == expected
