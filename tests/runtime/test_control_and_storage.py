"""`pets bot ...` / `pets halt` on the real broker; `pets run` with a database configured."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import polars as pl
import psycopg
import pytest
from click.testing import CliRunner

from pets.cli.bot import bot, halt, resume_trading
from pets.cli.run import run
from pets.flows.trading_io import read_topics
from pets.pipelines.migrations import migrate
from pets.schemas.control import ControlCommand
from pets.settings import Settings, project_root


def test_unknown_bot_is_refused_and_list_works_without_a_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = shutil.copytree(project_root() / "config", tmp_path / "config")
    shipped = config / "bots" / "bot_09_kelly_value_betting.yaml"
    shipped.write_text(shipped.read_text().replace("enabled: true", "enabled: false"))
    monkeypatch.setenv("PETS_CONFIG_DIR", str(config))
    refused = CliRunner().invoke(bot, ["stop", "bot_99"])
    assert refused.exit_code != 0 and "unknown bot 'bot_99'" in refused.output
    listed = CliRunner().invoke(bot, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["bot_id"] for r in rows} >= {"bot_01", "bot_05"}
    assert {r["bot_id"]: r["state"] for r in rows if not r["enabled"]} == {"bot_09": "DISABLED"}


@pytest.mark.integration
def test_commands_reach_the_bot_control_topic(
    prefixed_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PETS_KAFKA_BOOTSTRAP", prefixed_settings.require_kafka())
    monkeypatch.setenv("PETS_TOPIC_PREFIX", prefixed_settings.topic_prefix)
    commands: tuple[tuple[click.Command, list[str]], ...] = (
        (bot, ["pause", "bot_05", "--for", "60", "--reason", "test"]), (halt, ["--timeout", "0.5"]),
        (resume_trading, []), (bot, ["start", "*"]),
    )  # fmt: skip
    for command, args in commands:
        result = CliRunner().invoke(command, args)
        if command is halt:  # no flow runs here to acknowledge it (tests/faults/test_halt.py)
            assert result.exit_code == 1 and "by: risk, executor" in result.output, result.output
        else:
            assert result.exit_code == 0, result.output
    sent: list[ControlCommand] = list(read_topics(prefixed_settings, ["bot.control"]))
    assert [(c.command, c.bot_id) for c in sent] == [
        ("pause", "bot_05"), ("halt", "*"), ("resume_trading", "*"), ("start", "*")
    ]  # fmt: skip
    assert sent[0].reason == "test" and sent[0].until_ns is not None and sent[0].issued_by.startswith("cli")


@pytest.mark.integration
def test_run_keeps_simulated_trading_out_of_the_live_database(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the embedded run used to write its simulated fills and P&L into the tables the live flows use
    migrate(fresh_db)
    monkeypatch.setenv("PETS_POSTGRES_DSN", fresh_db)
    result = CliRunner().invoke(run, ["--duration", "60", "--journal", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(tmp_path / "fills.parquet").height > 0
    tables = ("order_intents", "approved_orders", "execution_reports", "pnl_snapshots", "bot_status")
    with psycopg.connect(fresh_db) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in tables}
    assert counts == dict.fromkeys(tables, (0,))
