"""Batched, idempotent writes into TimescaleDB / PostgreSQL.

One batch = one transaction: binary COPY into a per-connection TEMP staging table, then
``INSERT INTO target SELECT ... FROM staging ON CONFLICT (<unique key>)``: DO NOTHING for append-only
tables (a re-delivered row is ignored), DO UPDATE for current-state tables (a row with the same key and
a later or equal ``ts`` replaces the stored one when it differs). A table unique by an id alone whose
unique key must hold ts (a hypertable: execution_reports by report_id) skips a row whose id is stored.
Replaying a batch therefore inserts nothing, which also makes retrying a batch after a lost connection
safe. ``copy=False`` stages the batch with INSERTs instead of COPY, for servers without COPY FROM STDIN
(the WebAssembly TimescaleDB build the tests run, docs/storage.md); the move into the table is the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from pets.pipelines.tables import TableSpec, table_spec

log = logging.getLogger(__name__)

Row = Sequence[Any]
_MAX_PARAMETERS = 65_535  # of one statement (the protocol's 16-bit count)


class TimescaleWriter:
    """Writes row batches (sequences in the table's column order) through one reused connection."""

    def __init__(self, dsn: str, *, attempts: int = 3, retry_delay_s: float = 0.5, copy: bool = True) -> None:
        self._dsn = dsn
        self._copy = copy
        self._attempts = attempts
        self._retry_delay_s = retry_delay_s
        self._conn: psycopg.Connection | None = None
        self._staged: set[str] = set()  # staging tables created on the current connection
        self._statements: dict[str, str] = {}

    def write(self, table: str | TableSpec, rows: Sequence[Row]) -> int:
        """Write one batch; returns the rows inserted (or, for current-state tables, inserted or updated)."""
        spec = table_spec(table) if isinstance(table, str) else table
        width = len(spec.columns)
        for row in rows:
            if len(row) != width:
                raise ValueError(
                    f"table {spec.name}: a row has {len(row)} values, expected {width} "
                    f"({', '.join(spec.column_names)})"
                )
        if spec.upsert:
            rows = _latest_per_key(spec, rows)
        if not rows:
            return 0
        for attempt in range(1, self._attempts + 1):
            conn = self._connection()
            try:
                return self._write_batch(conn, spec, rows)
            except psycopg.OperationalError as exc:
                if not conn.broken or attempt == self._attempts:
                    raise
                log.warning("lost the database connection writing %s (%s); reconnecting", spec.name, exc)
                self._drop_connection()
                time.sleep(self._retry_delay_s * attempt)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._drop_connection()

    def __enter__(self) -> TimescaleWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._dsn, autocommit=True)
            self._staged.clear()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._staged.clear()

    def _write_batch(self, conn: psycopg.Connection, spec: TableSpec, rows: Sequence[Row]) -> int:
        stage = f"pets_stage_{spec.name}"
        columns = ", ".join(spec.column_names)
        if spec.name not in self._staged:
            conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {spec.name}) ON COMMIT DELETE ROWS")
            self._staged.add(spec.name)
        with conn.transaction(), conn.cursor() as cur:
            if self._copy:
                with cur.copy(f"COPY {stage} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(list(spec.pg_types))
                    for row in rows:
                        copy.write_row(row)
            else:
                # multi-row INSERTs, each one message: a pipeline of thousands of statements loses
                # responses on the WebAssembly server
                row_sql = f"({', '.join(['%s'] * len(spec.columns))})"
                per = _MAX_PARAMETERS // len(spec.columns)
                params = _params(spec, rows)
                for at in range(0, len(params), per):
                    chunk = params[at : at + per]
                    cur.execute(
                        f"INSERT INTO {stage} ({columns}) VALUES {', '.join([row_sql] * len(chunk))}",
                        [value for row in chunk for value in row],
                    )
            cur.execute(self._insert_statement(spec, stage))
            return cur.rowcount

    def _insert_statement(self, spec: TableSpec, stage: str) -> str:
        statement = self._statements.get(spec.name)
        if statement is None:
            statement = insert_statement(spec, stage)
            self._statements[spec.name] = statement
        return statement


def insert_statement(spec: TableSpec, stage: str) -> str:
    """The INSERT ... SELECT ... ON CONFLICT moving a staged batch into its table."""
    columns = ", ".join(spec.column_names)
    key = ", ".join(spec.key)
    head = f"INSERT INTO {spec.name} AS t ({columns}) SELECT {columns} FROM {stage} ON CONFLICT ({key})"
    if spec.unique_id is not None:
        uid = spec.unique_id
        first = f"{uid}, ts" if "ts" in spec.column_names else uid  # the earliest row of an id in a batch
        return (
            f"INSERT INTO {spec.name} AS t ({columns}) SELECT DISTINCT ON ({uid}) {columns} FROM {stage} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {spec.name} e WHERE e.{uid} = s.{uid}) ORDER BY {first} "
            f"ON CONFLICT ({key}) DO NOTHING"
        )
    if not spec.upsert:
        return f"{head} DO NOTHING"
    values = [c for c in spec.column_names if c not in spec.key]
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
    changed = (
        f"ROW({', '.join(f't.{c}' for c in values)}) IS DISTINCT FROM "
        f"ROW({', '.join(f'EXCLUDED.{c}' for c in values)})"
    )
    newer = "t.ts <= EXCLUDED.ts AND " if "ts" in spec.column_names else ""
    return f"{head} DO UPDATE SET {assignments} WHERE {newer}{changed}"


def _params(spec: TableSpec, rows: Sequence[Row]) -> list[Row]:
    """Rows as query parameters, a jsonb value wrapped (COPY's set_types says jsonb; a parameter cannot)."""
    json_at = [i for i, t in enumerate(spec.pg_types) if t == "jsonb"]
    if not json_at:
        return list(rows)
    wrapped: list[Row] = []
    for row in rows:
        values = list(row)
        for i in json_at:
            if values[i] is not None:
                values[i] = Jsonb(values[i])
        wrapped.append(values)
    return wrapped


def _latest_per_key(spec: TableSpec, rows: Sequence[Row]) -> list[Row]:
    """One row per key (ON CONFLICT DO UPDATE cannot touch a row twice): the latest ts, then the last."""
    key_at = [spec.position(c) for c in spec.key]
    ts_at = spec.position("ts") if "ts" in spec.column_names else None
    latest: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        key = tuple(row[i] for i in key_at)
        previous = latest.get(key)
        if previous is None or ts_at is None or row[ts_at] >= previous[ts_at]:
            latest[key] = row
    return list(latest.values())
