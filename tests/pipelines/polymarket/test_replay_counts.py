"""`pets replay`: the same per-frame counts to embedded and to Kafka; truncated recordings are skipped."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pets.cli import main
from pets.pipelines.simulator import simulated_frames
from pets.schemas.codec import decode
from pets.schemas.control import DeadLetter
from pets.settings import Settings

FRAMES = list(simulated_frames(20, markets=1, seed=3, wire="changes"))
MIXED = [*FRAMES[:4], b"[1,2,3]", b"[" + FRAMES[4] + b"," + FRAMES[5] + b"]", b'{"event_type":"nope"}']


def _replay(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["replay", *args, "--json"])
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.output)
    return summary


def _truncated_gz(tmp_path: Path) -> Path:
    path = tmp_path / "killed.jsonl.gz"
    whole = gzip.compress(b"\n".join(FRAMES) + b"\n")
    path.write_bytes(whole[: len(whole) * 2 // 3])  # what a killed recorder leaves: no gzip trailer
    return path


def test_embedded_counts_each_frame_once(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(MIXED) + b"\n")
    letters = tmp_path / "dead.jsonl"
    summary = _replay(str(path), "--to", "embedded", "--dead-letters", str(letters))
    assert (summary["frames"], summary["parsed"], summary["dead_lettered"]) == (7, 5, 2)
    dead = [decode(DeadLetter, line) for line in letters.read_bytes().splitlines()]
    assert [d.raw_bytes() for d in dead] == [b"[1,2,3]", b'{"event_type":"nope"}']


@pytest.mark.integration
def test_kafka_counts_the_same_frames_as_embedded(
    tmp_path: Path, prefixed_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(MIXED) + b"\n")
    monkeypatch.setenv("PETS_KAFKA_BOOTSTRAP", prefixed_settings.kafka_bootstrap or "")
    monkeypatch.setenv("PETS_TOPIC_PREFIX", prefixed_settings.topic_prefix)
    to_kafka = _replay(str(path), "--to", "kafka")
    embedded = _replay(str(path), "--to", "embedded")
    counts = ("frames", "parsed", "dead_lettered")
    assert [to_kafka[c] for c in counts] == [embedded[c] for c in counts]
    assert to_kafka["produced"] == 4 + 2  # the two events of the valid array frame each go to md.book


def test_a_truncated_recording_is_dead_lettered_and_the_next_file_still_plays(tmp_path: Path) -> None:
    truncated = _truncated_gz(tmp_path)
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"\n".join(FRAMES[:3]) + b"\n")
    letters = tmp_path / "dead.jsonl"
    summary = _replay(str(truncated), str(whole), "--dead-letters", str(letters))
    [reason] = summary["truncated"]
    assert reason.startswith(f"{truncated}: recording truncated after line ")
    lines_read = int(reason.split("after line ")[1].split()[0])
    assert 0 < lines_read < len(FRAMES)
    assert summary["frames"] == lines_read + 3
    dead = [decode(DeadLetter, line) for line in letters.read_bytes().splitlines()]
    assert reason in [d.reason for d in dead]


def test_a_gzip_file_that_is_not_gzip_is_dead_lettered_too(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.jsonl.gz"
    bogus.write_bytes(b"not gzip at all\n")
    summary = _replay(str(bogus))
    assert summary["frames"] == 0
    assert summary["truncated"] == [f"{bogus}: recording truncated after line 0 (Not a gzipped file (b'no'))"]
