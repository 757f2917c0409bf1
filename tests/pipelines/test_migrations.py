"""Schema migrations: the pure plan, and the runner against a real, empty PostgreSQL database."""

from __future__ import annotations

import json
import re
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from pets.cli import main
from pets.pipelines.migrations import (
    SQL_DIR,
    AppliedMigration,
    Migration,
    MigrationError,
    describe,
    load_migrations,
    migrate,
    plan,
    to_skip,
)
from pets.pipelines.tables import TABLES

NOW = datetime(2026, 7, 1, tzinfo=UTC)


def _record(m: Migration, status: str = "applied", checksum: str | None = None) -> AppliedMigration:
    return AppliedMigration(m.version, m.name, checksum or m.checksum, status, NOW)  # type: ignore[arg-type]


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


# --- the plan (pure) -------------------------------------------------------------------------------


def test_project_has_a_timescale_only_migration() -> None:
    files = load_migrations()
    assert "0009_timescale.sql" in [m.filename for m in files if m.requires_timescale]
    assert [m.version for m in files] == sorted(m.version for m in files)


def test_plan_issues_timescale_sql_only_when_the_extension_exists() -> None:
    files = load_migrations()
    plain = plan({}, files, timescale=False)
    with_ts = plan({}, files, timescale=True)
    assert plain == [m for m in files if not m.requires_timescale]
    assert not any("create_hypertable" in m.sql or "timescaledb." in m.sql for m in plain)
    assert with_ts == files
    assert any("create_hypertable" in m.sql for m in with_ts)


def test_skipped_timescale_migration_runs_once_the_extension_appears() -> None:
    files = load_migrations()
    applied = {m.version: _record(m) for m in plan({}, files, timescale=False)}
    skipped = to_skip(applied, files, timescale=False)
    assert skipped == [m for m in files if m.requires_timescale]
    applied |= {m.version: _record(m, "skipped") for m in skipped}

    assert plan(applied, files, timescale=False) == []
    assert to_skip(applied, files, timescale=False) == []  # recorded once, not again
    assert plan(applied, files, timescale=True) == skipped


def test_plan_refuses_an_edited_applied_migration_naming_the_file() -> None:
    files = load_migrations()
    applied = {m.version: _record(m) for m in files}
    applied[2] = _record(files[1], checksum="0" * 64)
    with pytest.raises(MigrationError, match=re.escape("0002_market_data.sql")):
        plan(applied, files, timescale=False)


def test_plan_runs_new_files_after_applied_ones(tmp_path: Path) -> None:
    files = load_migrations(_write(tmp_path, {
        "0001_a.sql": "SELECT 1;", "0002_b.sql": "SELECT 2;", "0010_c.sql": "SELECT 3;",
    }))
    applied = {1: _record(files[0])}
    assert [m.filename for m in plan(applied, files, timescale=False)] == ["0002_b.sql", "0010_c.sql"]


def test_loader_rejects_bad_names_and_repeated_versions(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match=re.escape("Add_Things.sql")):
        load_migrations(_write(tmp_path / "a", {"0001_Add_Things.sql": "SELECT 1;"}))
    with pytest.raises(MigrationError, match=re.escape("0001_two.sql")):
        load_migrations(_write(tmp_path / "b", {"0001_one.sql": "SELECT 1;", "0001_two.sql": "SELECT 2;"}))


def test_describe_reports_every_state(tmp_path: Path) -> None:
    files = load_migrations(_write(tmp_path, {
        "0001_a.sql": "SELECT 1;", "0002_b.sql": "SELECT 2;", "0003_c.sql": "SELECT 3;",
        "0004_ts.sql": "-- requires: timescaledb\nSELECT 4;",
    }))
    gone = AppliedMigration(7, "gone", "x", "applied", NOW)
    applied = {1: _record(files[0]), 2: _record(files[1], checksum="f" * 64),
               4: _record(files[3], "skipped"), 7: gone}
    states = {s.version: s.state for s in describe(applied, files)}
    assert states == {1: "applied", 2: "changed", 3: "pending", 4: "skipped", 7: "missing_file"}


# --- the runner against real PostgreSQL --------------------------------------------------------------


def _catalog(dsn: str) -> dict[str, Any]:
    """Columns, indexes, constraints and migration records of the public schema."""
    with psycopg.connect(dsn) as conn:
        return {
            "columns": conn.execute(
                """SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
                FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
                  AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2"""
            ).fetchall(),
            "indexes": conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
            ).fetchall(),
            "constraints": conn.execute(
                """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                WHERE connamespace = 'public'::regnamespace ORDER BY 1"""
            ).fetchall(),
            "migrations": conn.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall(),
        }


@pytest.mark.integration
def test_migrate_on_an_empty_database_creates_every_table(fresh_db: str) -> None:
    result = migrate(fresh_db)
    files = load_migrations()
    with psycopg.connect(fresh_db) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        records = conn.execute(
            "SELECT version, name, status FROM schema_migrations ORDER BY version"
        ).fetchall()
    assert set(TABLES) | {"schema_migrations"} <= tables
    if result.timescale:
        assert [r[2] for r in records] == ["applied"] * len(files)
    else:
        assert result.applied == tuple(m for m in files if not m.requires_timescale)
        assert result.skipped == tuple(m for m in files if m.requires_timescale)
        assert [r for r in records if r[2] == "skipped"] == [
            (m.version, m.name, "skipped") for m in files if m.requires_timescale
        ]
        assert (9, "timescale", "skipped") in records


@pytest.mark.integration
def test_tables_match_the_python_specs(fresh_db: str) -> None:
    """The writer's column order, types and conflict keys are what the migrations created."""
    migrate(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        for spec in TABLES.values():
            columns = conn.execute(
                """SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""",
                (spec.name,),
            ).fetchall()
            expected = [
                (c.name, conn.execute("SELECT format_type(%s::regtype, NULL)", (c.pg_type,)).fetchone()[0])  # type: ignore[index]
                for c in spec.columns
            ]
            assert columns == expected, spec.name
            unique_keys = {
                frozenset(r[0]) for r in conn.execute(
                    """SELECT array_agg(a.attname) FROM pg_index i
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                    WHERE i.indrelid = %s::regclass AND i.indisunique GROUP BY i.indexrelid""",
                    (spec.name,),
                )
            }
            assert frozenset(spec.key) in unique_keys, spec.name
            if spec.name != "news_items" and not spec.upsert:
                assert "ts" in spec.key, f"{spec.name}: replayable rows need ts in the unique key"


@pytest.mark.integration
def test_migrate_twice_changes_nothing(fresh_db: str) -> None:
    migrate(fresh_db)
    before = _catalog(fresh_db)
    again = migrate(fresh_db)
    assert again.applied == () and again.skipped == ()
    assert _catalog(fresh_db) == before


@pytest.mark.integration
def test_an_edited_applied_migration_is_refused(fresh_db: str, tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    migrate(fresh_db, sql_dir)
    edited = sql_dir / "0002_market_data.sql"
    edited.write_text(edited.read_text() + "\nCREATE INDEX trades_side_idx ON trades (side);\n")
    before = _catalog(fresh_db)
    with pytest.raises(MigrationError, match=re.escape("0002_market_data.sql")):
        migrate(fresh_db, sql_dir)
    assert _catalog(fresh_db) == before


@pytest.mark.integration
def test_a_failing_migration_is_rolled_back_and_named(fresh_db: str, tmp_path: Path) -> None:
    sql_dir = _write(tmp_path, {
        "0001_ok.sql": "CREATE TABLE ok_table (id int);",
        "0002_broken.sql": "CREATE TABLE half_done (id int);\nSELECT no_such_column FROM ok_table;",
    })
    with pytest.raises(MigrationError, match=re.escape("0002_broken.sql")):
        migrate(fresh_db, sql_dir)
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('ok_table') IS NOT NULL").fetchone() == (True,)
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]


@pytest.mark.integration
def test_concurrent_migrators_apply_each_file_once(fresh_db: str) -> None:
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(fresh_db))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    applied = sorted(m.version for r in results for m in r.applied)
    expected = [m.version for m in plan({}, load_migrations(), results[0].timescale)]
    assert applied == expected  # no file ran twice, none was missed


@pytest.mark.integration
def test_cli_migrate_and_status(fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETS_POSTGRES_DSN", fresh_db)
    runner = CliRunner()
    before = json.loads(runner.invoke(main, ["db", "status", "--json"], catch_exceptions=False).output)
    assert {m["state"] for m in before["migrations"]} == {"pending"}

    first = json.loads(runner.invoke(main, ["db", "migrate", "--json"], catch_exceptions=False).output)
    assert "0001_reference.sql" in first["applied"]
    second = runner.invoke(main, ["db", "migrate"], catch_exceptions=False)
    assert second.exit_code == 0 and "up to date" in second.output

    after = json.loads(runner.invoke(main, ["db", "status", "--json"], catch_exceptions=False).output)
    states = {m["name"]: m["state"] for m in after["migrations"]}
    assert states["reference"] == "applied"
    assert states["timescale"] == ("applied" if after["timescale"] else "skipped")


def test_cli_migrate_without_postgres_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PETS_MODE", "production")
    monkeypatch.delenv("PETS_POSTGRES_DSN", raising=False)
    monkeypatch.setenv("PETS_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["db", "migrate"])
    assert result.exit_code != 0 and "PETS_POSTGRES_DSN" in result.output
