"""What an operator sees when something goes wrong: one clear line, a clean exit, reasons kept."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from pets.cli.bot import bot
from pets.cli.run import report_command, run
from pets.schemas.control import DeadLetter

MARKET, YES, NO = "0xcut", "8001", "8002"
T0 = 1_750_000_000_000


def _recording(path: Path, lines: int) -> list[bytes]:
    frames = []
    for i in range(lines):
        asset = YES if i % 2 == 0 else NO
        bid, ask = ("0.40", "0.45") if asset == YES else ("0.55", "0.60")
        frames.append(json.dumps({
            "event_type": "book", "asset_id": asset, "market": MARKET, "timestamp": str(T0 + i * 100),
            "hash": f"h{i}", "bids": [{"price": bid, "size": str(100 + i)}],
            "asks": [{"price": ask, "size": str(200 + i)}],
        }).encode())  # fmt: skip
    frames[3] = b'{"event_type":"book","asset_id":'  # a malformed line in the middle
    path.write_bytes(gzip.compress(b"\n".join(frames) + b"\n"))
    return frames


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETS_MODE", "embedded")
    monkeypatch.delenv("PETS_POSTGRES_DSN", raising=False)
    monkeypatch.delenv("PETS_KAFKA_BOOTSTRAP", raising=False)


def test_run_replay_of_a_truncated_recording_dead_letters_the_cut_and_goes_on(
    tmp_path: Path, embedded: None
) -> None:
    # before: a traceback (TruncatedRecording) and no journal at all
    whole = tmp_path / "whole.jsonl.gz"
    _recording(whole, 4000)
    cut = tmp_path / "cut.jsonl.gz"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    journal = tmp_path / "journal"
    result = CliRunner().invoke(run, ["--replay", str(cut), "--journal", str(journal), "--json"])
    assert result.exit_code == 0, result.output
    letters = [
        msgspec.json.decode(line, type=DeadLetter)
        for line in (journal / "dead_letters.jsonl").read_bytes().splitlines()
    ]
    reasons = [letter.reason for letter in letters]
    assert len(letters) == 2, reasons
    assert any("recording truncated after line" in r for r in reasons)
    (bad,) = [letter for letter in letters if letter.source == "run.parse"]
    assert bad.raw_bytes() == b'{"event_type":"book","asset_id":'
    assert "2 dead-lettered" in result.stderr and "dead letters by reason:" in result.stderr
    assert "       1 x " + reasons[0][:80] in result.stderr
    assert (journal / "fills.parquet").is_file()  # the journal is written
    again = CliRunner().invoke(report_command, ["--journal", str(journal)])
    assert again.exit_code == 0 and "recording truncated after line" in again.stderr


def test_pause_for_a_non_positive_duration_is_refused() -> None:
    for value in ("-5", "0"):
        result = CliRunner().invoke(bot, ["pause", "bot_05", "--for", value])
        assert result.exit_code == 2 and "--for" in result.output, result.output
