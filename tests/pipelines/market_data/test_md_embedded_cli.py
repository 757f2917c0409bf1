"""The market-data benchmarks find the shared data through PETS_SHARED_DATA and print results alike."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pets.cli import main
from pets.pipelines.simulator import simulated_frames


@pytest.fixture
def shared_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shared-data folder outside the checkout's ../shared/data, holding one small recording."""
    l2 = tmp_path / "elsewhere" / "polymarket" / "l2"
    l2.mkdir(parents=True)
    (l2 / "tiny.jsonl.gz").write_bytes(
        gzip.compress(b"\n".join(simulated_frames(40, markets=1, wire="changes")[:40]) + b"\n")
    )
    monkeypatch.setenv("PETS_SHARED_DATA", str(tmp_path / "elsewhere"))
    return tmp_path / "elsewhere"


def test_bench_market_state_reads_the_recordings_of_pets_shared_data(shared_elsewhere: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "market-state", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["input"] == f"recordings in {shared_elsewhere / 'polymarket' / 'l2'}"
    assert report["frames"] == 40


def test_bench_results_print_one_aligned_line_per_field(shared_elsewhere: Path) -> None:
    as_json = json.loads(CliRunner().invoke(main, ["bench", "market-state", "--json"]).output)
    result = CliRunner().invoke(main, ["bench", "market-state"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == list(as_json)
    width = max(map(len, as_json))
    assert all(line[width : width + 2] == "  " and line[width + 2] != " " for line in lines)
