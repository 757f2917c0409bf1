"""`pets bench loop-latency` runs itself several times and reports each run (issue 12 item 9): a
slow first run cannot hide behind the others."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pets.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_each_run_is_reported_with_its_own_p50_p99_and_max(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PETS_KAFKA_BOOTSTRAP", kafka_bootstrap)  # the bench reads its settings from env
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "loop-latency",
            "--runs",
            "2",
            "--seconds",
            "3",
            "--epoch-ms",
            "1000",
            "--broker-warmup-s",
            "1",
            "--json",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["runs"]
    assert len(runs) == 2
    for run in runs:
        assert run["approved_orders"] > 0, run
        assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"], run
        # timing starts once an approval came back: the flows' start-up is never in the figures
        assert run["ready_s"] > 0 and len(run["load_average"]) == 3
