"""`pets db migrate|status`: the database schema; `pets db shell|backup`: psql and pg_dump on the configured
database; `pets bench copy`: write speed into PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from pets.cli import settings_from_env
from pets.cli._output import echo_json, peak_rss_mb
from pets.cli.bench import bench


def _postgres_dsn() -> str:
    from pets.settings import SettingsError

    try:
        return settings_from_env().require_postgres()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _redacted(dsn: str) -> str:
    """The DSN without its password, for error messages."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params.pop("password", None)
    return make_conninfo("", **params)


@contextmanager
def _db_errors(dsn: str) -> Iterator[None]:
    import psycopg

    from pets.pipelines.migrations import MigrationError

    try:
        yield
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"PostgreSQL at {_redacted(dsn)}: {exc}".strip()) from None


@click.group()
def db() -> None:
    """The PostgreSQL / TimescaleDB schema."""


@db.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def migrate(as_json: bool) -> None:
    """Apply the pending SQL migrations (idempotent; safe to run concurrently)."""
    from pets.pipelines.migrations import migrate as run_migrations

    dsn = _postgres_dsn()
    with _db_errors(dsn):
        result = run_migrations(dsn)
    if as_json:
        echo_json({
            "timescale": result.timescale,
            "applied": [m.filename for m in result.applied],
            "skipped": [m.filename for m in result.skipped],
        })
        return
    for m in result.applied:
        click.echo(f"applied  {m.filename}")
    for m in result.skipped:
        click.echo(f"skipped  {m.filename} (the timescaledb extension is not available; applied once it is)")
    if not result.applied and not result.skipped:
        click.echo("schema is up to date")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def status(as_json: bool) -> None:
    """Show every migration: applied, pending, skipped (needs TimescaleDB), changed or missing_file."""
    from pets.pipelines.migrations import status as migration_status

    dsn = _postgres_dsn()
    with _db_errors(dsn):
        timescale, states = migration_status(dsn)
    if as_json:
        echo_json({
            "timescale": timescale,
            "migrations": [
                {
                    "version": s.version,
                    "name": s.name,
                    "state": s.state,
                    "requires_timescale": s.requires_timescale,
                    "applied_at": s.applied_at.isoformat() if s.applied_at else None,
                }
                for s in states
            ],
        })
        return
    click.echo(f"timescaledb: {'available' if timescale else 'not available (plain PostgreSQL tables)'}")
    for s in states:
        when = s.applied_at.isoformat(timespec="seconds") if s.applied_at else ""
        waiting = s.requires_timescale and not timescale and s.state != "applied"
        note = " (needs timescaledb)" if waiting else ""
        click.echo(f"{s.version:04d}  {s.name:<24} {s.state:<13} {when}{note}")


@db.command()
def shell() -> None:
    """psql on the configured database (PETS_POSTGRES_DSN or `pets infra up`'s)."""
    import os
    import shutil

    psql = shutil.which("psql")
    if psql is None:
        raise click.ClickException("psql not found (Debian: apt-get install postgresql-client)")
    os.execv(psql, [psql, _postgres_dsn()])


@db.command()
@click.argument("file", type=click.Path(dir_okay=False), required=False)
def backup(file: str | None) -> None:
    """pg_dump of the configured database in custom format to FILE [default: .pets/backups/<time>.dump]
    (restore with pg_restore)."""
    import shutil
    import subprocess
    from datetime import UTC, datetime
    from pathlib import Path

    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise click.ClickException("pg_dump not found (Debian: apt-get install postgresql-client)")
    dsn = _postgres_dsn()
    target = Path(file) if file else settings_from_env().state_dir / "backups" / (
        datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".dump"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    command = [pg_dump, "--format=custom", f"--file={target}", dsn]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise click.ClickException(f"pg_dump of {_redacted(dsn)} failed: {done.stderr.strip()}")
    click.echo(f"backup: {target} ({target.stat().st_size} bytes)")


def _top_of_book_rows(count: int, assets: int = 20) -> list[tuple[Any, ...]]:
    """Deterministic top_of_book rows on the 0.01 tick grid, sizes on the 2-decimal grid."""
    import random
    from decimal import Decimal

    from pets.pipelines.tables import ts_from_ms

    rng = random.Random(7)
    start_ms = 1_750_000_000_000
    step, fine = Decimal("0.01"), Decimal("0.000001")
    rows = []
    for i in range(count):
        bid_ticks = rng.randint(1, 97)
        bid, ask = bid_ticks * step, (bid_ticks + rng.randint(1, 2)) * step
        bid_size, ask_size = rng.randint(500, 500_000) * step, rng.randint(500, 500_000) * step
        mid = (bid + ask) / 2
        microprice = ((bid * ask_size + ask * bid_size) / (bid_size + ask_size)).quantize(fine)
        imbalance = ((bid_size - ask_size) / (bid_size + ask_size)).quantize(fine)
        rows.append((
            ts_from_ms(start_ms + i), f"asset-{i % assets}", f"market-{i % assets // 2}", bid, ask,
            bid_size, ask_size, mid, microprice, ask - bid, imbalance, step, False,
            f"asset-{(i % assets) ^ 1}", None, None, i,
        ))
    return rows


def _timed(label: str, rows: int, run: Callable[[], int]) -> dict[str, Any]:
    started = time.perf_counter()
    written = run()
    seconds = time.perf_counter() - started
    return {"mode": label, "rows": rows, "written": written, "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds) if seconds else None}


@bench.command("copy")
@click.option("--rows", "count", default=200_000, show_default=True, help="top_of_book rows to write.")
@click.option("--batch", default=5_000, show_default=True, help="Rows per write (one transaction each).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def bench_copy(count: int, batch: int, as_json: bool) -> None:
    """Rows/s into PostgreSQL: the deduplicating writer (new rows, then a full replay) vs raw binary COPY.

    Runs in a scratch database created and dropped here (needs CREATEDB).
    """
    import psycopg
    from psycopg.conninfo import make_conninfo

    from pets.pipelines.migrations import migrate as run_migrations
    from pets.pipelines.tables import TOP_OF_BOOK
    from pets.pipelines.timescale import TimescaleWriter

    dsn = _postgres_dsn()
    scratch = f"pets_bench_{uuid.uuid4().hex[:10]}"
    scratch_dsn = make_conninfo(dsn, dbname=scratch)
    rows = _top_of_book_rows(count)
    batches = [rows[i : i + batch] for i in range(0, len(rows), batch)]

    def write_all(writer: TimescaleWriter) -> int:
        return sum(writer.write(TOP_OF_BOOK, b) for b in batches)

    def raw_copy() -> int:
        columns = ", ".join(TOP_OF_BOOK.column_names)
        with psycopg.connect(scratch_dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE top_of_book_raw (LIKE top_of_book INCLUDING ALL)")
            for b in batches:
                with (
                    conn.transaction(),
                    conn.cursor() as cur,
                    cur.copy(f"COPY top_of_book_raw ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
                ):
                    copy.set_types(list(TOP_OF_BOOK.pg_types))
                    for row in b:
                        copy.write_row(row)
        return count

    with _db_errors(dsn):
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{scratch}"')
        try:
            timescale = run_migrations(scratch_dsn).timescale
            with TimescaleWriter(scratch_dsn) as writer:
                results = [
                    _timed("writer", count, lambda: write_all(writer)),
                    _timed("writer_replay", count, lambda: write_all(writer)),
                ]
            results.append(_timed("raw_copy", count, raw_copy))
        finally:
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    report = {"table": "top_of_book", "rows": count, "batch": batch, "timescale": timescale,
              "results": results, "peak_rss_mb": peak_rss_mb()}
    if as_json:
        echo_json(report)
        return
    click.echo(f"top_of_book, {count} rows in batches of {batch} (timescaledb: {timescale})")
    for r in results:
        click.echo(f"{r['mode']:<14} {r['rows']} rows  {r['seconds']:.3f} s  {r['rows_per_s']} rows/s  "
                   f"written {r['written']}")


commands = [db]
