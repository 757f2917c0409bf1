"""Schema migrations: the SQL files in ``pets/schemas/sql`` applied in order, once each.

A file is ``NNNN_name.sql``. Each runs in its own transaction and is recorded in
``schema_migrations`` (version, name, checksum, status, applied_at). A file whose first line is
``-- requires: timescaledb`` runs only where the extension is available; elsewhere it is recorded
with status ``skipped`` and applied by a later ``migrate`` once the extension appears. Editing an
applied file is refused (its checksum changed): add a new migration instead. A session advisory
lock makes concurrent migrators run one after the other.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import psycopg

SQL_DIR = Path(__file__).resolve().parents[1] / "schemas" / "sql"
TIMESCALE_DIRECTIVE = "-- requires: timescaledb"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Arbitrary constant shared by every migrator of any PETS database ("pets" in ASCII).
_LOCK_KEY = 0x70657473

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    status     text NOT NULL CHECK (status IN ('applied', 'skipped')),
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

Status = Literal["applied", "skipped"]
State = Literal["applied", "pending", "skipped", "changed", "missing_file"]


class MigrationError(RuntimeError):
    """A migration cannot be planned or applied; the message names the file."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str
    checksum: str
    requires_timescale: bool

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    status: Status
    applied_at: datetime


@dataclass(frozen=True, slots=True)
class MigrationState:
    version: int
    name: str
    state: State
    requires_timescale: bool
    applied_at: datetime | None


@dataclass(frozen=True, slots=True)
class MigrateResult:
    timescale: bool
    applied: tuple[Migration, ...]
    skipped: tuple[Migration, ...]


def load_migrations(directory: Path = SQL_DIR) -> list[Migration]:
    """Every ``*.sql`` file of ``directory`` in version order; a bad name or repeated version is an error."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_lowercase_name.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"{path}: version {version:04d} is also {migrations[version].filename}")
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
        migrations[version] = Migration(
            version=version,
            name=match.group(2),
            path=path,
            sql=text,
            checksum=hashlib.sha256(text.encode()).hexdigest(),
            requires_timescale=text.startswith(TIMESCALE_DIRECTIVE),
        )
    return [migrations[v] for v in sorted(migrations)]


def _check_unchanged(record: AppliedMigration, migration: Migration) -> None:
    if record.name != migration.name or record.checksum != migration.checksum:
        raise MigrationError(
            f"{migration.path}: migration {record.version:04d} was applied as {record.name!r} "
            f"(checksum {record.checksum[:12]}), the file is now {migration.name!r} "
            f"(checksum {migration.checksum[:12]}); never edit an applied migration, add a new one"
        )


def plan(
    applied: Mapping[int, AppliedMigration], files: Sequence[Migration], timescale: bool
) -> list[Migration]:
    """The migrations to run now, in order. Raises MigrationError if an applied file was edited."""
    todo = []
    for migration in files:
        record = applied.get(migration.version)
        if record is not None and record.status == "applied":
            _check_unchanged(record, migration)
            continue
        if migration.requires_timescale and not timescale:
            continue
        todo.append(migration)
    return todo


def to_skip(
    applied: Mapping[int, AppliedMigration], files: Sequence[Migration], timescale: bool
) -> list[Migration]:
    """TimescaleDB-only migrations not yet recorded, to be recorded as skipped on a plain PostgreSQL."""
    if timescale:
        return []
    return [m for m in files if m.requires_timescale and m.version not in applied]


def describe(
    applied: Mapping[int, AppliedMigration], files: Sequence[Migration]
) -> list[MigrationState]:
    """Where every known migration stands (files and recorded versions), in version order."""
    by_version = {m.version: m for m in files}
    states = []
    for version in sorted(set(by_version) | set(applied)):
        migration, record = by_version.get(version), applied.get(version)
        state: State
        if migration is None:
            assert record is not None
            state = "missing_file"
        elif record is None:
            state = "pending"
        elif record.status == "skipped":
            state = "skipped"
        elif record.checksum != migration.checksum or record.name != migration.name:
            state = "changed"
        else:
            state = "applied"
        states.append(
            MigrationState(
                version=version,
                name=migration.name if migration else record.name if record else "",
                state=state,
                requires_timescale=bool(migration and migration.requires_timescale),
                applied_at=record.applied_at if record else None,
            )
        )
    return states


def timescale_available(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
    ).fetchone()
    return bool(row and row[0])


def read_applied(conn: psycopg.Connection) -> dict[int, AppliedMigration]:
    """The recorded migrations ({} when the database was never migrated)."""
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return {}
    rows = conn.execute(
        "SELECT version, name, checksum, status, applied_at FROM schema_migrations ORDER BY version"
    ).fetchall()
    return {r[0]: AppliedMigration(*r) for r in rows}


def migrate(dsn: str, directory: Path = SQL_DIR) -> MigrateResult:
    """Apply every pending migration to the database at ``dsn``; safe to run again and concurrently."""
    files = load_migrations(directory)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(_BOOTSTRAP)
            applied = read_applied(conn)
            timescale = timescale_available(conn)
            todo = plan(applied, files, timescale)
            for migration in todo:
                _apply(conn, migration)
            skipped = to_skip(applied, files, timescale)
            for migration in skipped:
                _record(conn, migration, "skipped")
        finally:
            if not conn.broken:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return MigrateResult(timescale=timescale, applied=tuple(todo), skipped=tuple(skipped))


def status(dsn: str, directory: Path = SQL_DIR) -> tuple[bool, list[MigrationState]]:
    """(TimescaleDB available, the state of every migration) without changing anything."""
    files = load_migrations(directory)
    with psycopg.connect(dsn, autocommit=True) as conn:
        return timescale_available(conn), describe(read_applied(conn), files)


def _apply(conn: psycopg.Connection, migration: Migration) -> None:
    try:
        with conn.transaction():
            conn.execute(migration.sql.encode())
            _record(conn, migration, "applied")
    except psycopg.Error as exc:
        raise MigrationError(f"{migration.path}: {type(exc).__name__}: {exc}".rstrip()) from exc


def _record(conn: psycopg.Connection, migration: Migration, status: Status) -> None:
    conn.execute(
        """
        INSERT INTO schema_migrations (version, name, checksum, status) VALUES (%s, %s, %s, %s)
        ON CONFLICT (version) DO UPDATE
        SET name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status, applied_at = now()
        """,
        (migration.version, migration.name, migration.checksum, status),
    )
