"""`pets bench market-state` and `pets bench market-state-latency` run and report what they measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pets.cli import main


def test_bench_market_state_on_simulated_frames_without_shared_data(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "market-state",
            "--data",
            str(tmp_path),
            "--synthetic-frames",
            "600",
            "--passes",
            "2",
            "--messages",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["input"].startswith("simulated")
    assert report["frames"] == 2 * 600 and report["dead_lettered"] == 0
    assert report["top_of_book_consumed"] > 0
    assert report["frames_per_s"] > 0 and report["seconds"] > 0 and report["peak_rss_mb"] > 0


@pytest.mark.shared_data
def test_bench_market_state_reads_every_recording(shared_data: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "market-state", "--data", str(shared_data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["frames"], report["dead_lettered"]) == (64_825, 0)


@pytest.mark.integration
def test_bench_market_state_latency_through_the_broker(kafka_bootstrap: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "market-state-latency",
            "--data",
            str(tmp_path),
            "--rate",
            "500",
            "--seconds",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["frames"] == 500 and report["tops_timed"] > 400
    assert 0 < report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
