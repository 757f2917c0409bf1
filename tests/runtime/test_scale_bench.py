"""`pets bench scale`: market_state as a cluster over the real broker, each configuration measured on
its backlog's known count of tops (issue 17)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pets.cli import main
from pets.runtime.scale import expected_tops, universe

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_each_configuration_publishes_the_backlogs_tops_and_is_timed(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PETS_KAFKA_BOOTSTRAP", kafka_bootstrap)  # the bench reads its settings from env
    monkeypatch.setenv("PETS_MODE", "production")
    args = ["--markets", "20", "--frames", "400", "--paced-frames", "200", "--rate", "400", "--json"]
    result = CliRunner().invoke(
        main, ["bench", "scale", *args, "--config", "1x1", "--config", "2x1"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    backlog, _ = universe(20, 400, 200)
    # the in-process books' count: every top but each market's last group, which waits for its next frame
    tops = expected_tops(backlog)
    assert 0 < tops < sum(1 for _ in backlog) * 2
    assert [(r["processes"], r["workers"]) for r in out["results"]] == [(1, 1), (2, 2)]
    for run in out["results"]:
        assert run["tops"] == tops, run  # one process or two: the same tops, none twice
        assert run["frames_per_s"] > 0 and run["frames_per_cpu_s"] > 0 and run["cpu_s"] > 0, run
        assert run["tops_timed"] > 0 and 0 < run["p50_ms"] <= run["p99_ms"], run
    assert len(out["load_average_before"]) == 3 and out["markets"] == 20


def test_a_configuration_must_be_processes_x_workers() -> None:
    result = CliRunner().invoke(main, ["bench", "scale", "--config", "2by2"])
    assert result.exit_code == 2 and "expected PROCESSESxWORKERS" in result.output
