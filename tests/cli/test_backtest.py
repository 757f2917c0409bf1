"""`pets backtest value`: the JSON contract and the readable table."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pets.cli import main


def test_value_backtest_json_and_table(shared_data: Path) -> None:
    args = ["backtest", "value", "--bot", "bot_09", "--data-dir", str(shared_data)]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["bot"] == "bot_09" and report["strategy"] == "kelly_value_betting"
    for side in ("bot_result", "baseline"):
        assert {"trades", "hit_rate", "pnl", "roi"} <= report[side].keys()
        assert isinstance(report[side]["pnl"], str) and isinstance(report[side]["roi"], str)
    assert isinstance(report["brier"]["model"], str) and isinstance(report["brier"]["price"], str)
    assert all(isinstance(t["price"], str) for t in report["trades"])

    table = CliRunner().invoke(main, args)
    assert table.exit_code == 0
    assert "baseline" in table.stdout and f"Brier on {report['brier']['rows']} rows" in table.stdout


def test_value_backtest_without_data_names_the_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["backtest", "value", "--bot", "bot_10", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and f"{tmp_path / 'calibration'}: no calibration data" in result.output
