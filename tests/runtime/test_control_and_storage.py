"""`pets bot ...` / `pets halt` on the real broker, and `pets run --db` into a real database."""

from __future__ import annotations

import json
from decimal import Decimal
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
from pets.settings import Settings


def test_unknown_bot_is_refused_and_list_works_without_a_database() -> None:
    refused = CliRunner().invoke(bot, ["stop", "bot_99"])
    assert refused.exit_code != 0 and "unknown bot 'bot_99'" in refused.output
    listed = CliRunner().invoke(bot, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["bot_id"] for r in rows} >= {"bot_01", "bot_05"}
    assert {r["state"] for r in rows if not r["enabled"]} == {"DISABLED"}


@pytest.mark.integration
def test_commands_reach_the_bot_control_topic(
    prefixed_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PETS_KAFKA_BOOTSTRAP", prefixed_settings.require_kafka())
    monkeypatch.setenv("PETS_TOPIC_PREFIX", prefixed_settings.topic_prefix)
    commands: tuple[tuple[click.Command, list[str]], ...] = (
        (bot, ["pause", "bot_05", "--for", "60", "--reason", "test"]), (halt, []), (resume_trading, []),
        (bot, ["start", "*"]),
    )  # fmt: skip
    for command, args in commands:
        result = CliRunner().invoke(command, args)
        assert result.exit_code == 0, result.output
    sent: list[ControlCommand] = list(read_topics(prefixed_settings, ["bot.control"]))
    assert [(c.command, c.bot_id) for c in sent] == [
        ("pause", "bot_05"), ("halt", "*"), ("resume_trading", "*"), ("start", "*")
    ]  # fmt: skip
    assert sent[0].reason == "test" and sent[0].until_ns is not None and sent[0].issued_by.startswith("cli")


@pytest.mark.integration
def test_run_stores_the_journal_in_the_database(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(fresh_db)
    monkeypatch.setenv("PETS_POSTGRES_DSN", fresh_db)
    args = ["--duration", "60", "--journal", str(tmp_path), "--json", "--db"]
    first = CliRunner().invoke(run, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(run, args, catch_exceptions=False)  # the same run: nothing stored twice
    assert "execution_reports +" not in again.stderr
    fills = pl.read_parquet(tmp_path / "fills.parquet")
    pnl = pl.read_parquet(tmp_path / "pnl.parquet")
    with psycopg.connect(fresh_db) as conn:
        stored = conn.execute(
            "SELECT count(*), sum(last_qty * last_px), sum(fee) FROM execution_reports WHERE last_qty > 0"
        ).fetchone()
        cash: dict[str, Decimal] = dict(
            conn.execute(
                "SELECT DISTINCT ON (bot_id) bot_id, cash FROM pnl_snapshots ORDER BY bot_id, ts DESC"
            ).fetchall()
        )
        states: dict[str, str] = dict(conn.execute("SELECT bot_id, state FROM bot_status").fetchall())
    assert stored is not None and stored[0] == fills.height
    assert stored[1] == sum(
        (q * p for q, p in zip(fills["last_qty"], fills["last_px"], strict=True)), Decimal(0)
    )
    assert stored[2] == sum(fills["fee"], Decimal(0))
    final = pnl.filter(pl.col("ts_ns") == pnl["ts_ns"].max())
    assert cash == dict(zip(final["bot_id"], final["cash"], strict=True))
    alerts = pl.read_parquet(tmp_path / "alerts.parquet")
    paused = set(alerts.filter(pl.col("kind") == "circuit_breaker")["bot_id"])
    assert states["bot_05"] == ("PAUSED" if "bot_05" in paused else "RUNNING")
    assert states["bot_02"] == "DISABLED"
