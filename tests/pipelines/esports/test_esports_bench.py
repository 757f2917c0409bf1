"""`pets bench esports` runs end to end (a fast, short version) and reports its contract's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pets.cli import main


@pytest.mark.shared_data
def test_bench_esports_reports_throughput_and_latency(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PETS_STATE_DIR", str(tmp_path))  # no promoted model: fitted for the bench
    result = CliRunner().invoke(main, ["bench", "esports", "--passes", "1", "--speed", "3000", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"].startswith("fitted") and report["throughput_frames"] > 0
    assert report["throughput_frames_per_s"] > 0 and report["polls"] > 0
    assert report["intents_timed"] > 0 and 0 < report["latency_ms_p50"] <= report["latency_ms_p99"]
