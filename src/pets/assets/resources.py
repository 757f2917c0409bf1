"""Dagster resources: PostgreSQL/TimescaleDB, Kafka, the Gamma and Data-API HTTP clients, the model store.

Each is a thin typed wrapper over the project's own I/O code (TimescaleWriter, kafka_io, GammaClient,
JsonHttpClient) so the assets read as computation. Which addresses they get is decided in one
place, ``pets.assets.environment``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import msgspec
import polars as pl
import psycopg

from pets.pipelines.tables import TableSpec
from pets.settings import Settings, SettingsError

DATA_API_MAX_PAGE = 500


class PostgresResource(dg.ConfigurableResource):
    """The PETS database (TimescaleDB in production, plain PostgreSQL locally)."""

    dsn: str

    def require_dsn(self) -> str:
        if not self.dsn:
            raise SettingsError("no PostgreSQL: set PETS_POSTGRES_DSN or start one with `pets infra up`")
        return self.dsn

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.require_dsn(), autocommit=True) as conn:
            yield conn

    def migrate(self) -> None:
        """Apply pending migrations (idempotent): assets never run against an older schema."""
        from pets.pipelines.migrations import migrate

        migrate(self.require_dsn())

    def frame(self, sql: str, schema: Mapping[str, Any], params: Sequence[Any] = ()) -> pl.DataFrame:
        """Query result as a polars frame with the given column types (numeric stays Decimal)."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        return pl.DataFrame(rows, schema=dict(schema), orient="row")

    def write(self, spec: TableSpec, rows: Sequence[Sequence[Any]]) -> int:
        """Idempotent batch write (ON CONFLICT by the table's key) through TimescaleWriter."""
        from pets.pipelines.timescale import TimescaleWriter

        with TimescaleWriter(self.require_dsn()) as writer:
            return writer.write(spec, rows)

    def replace(
        self, spec: TableSpec, where: str, params: Sequence[Any], rows: Sequence[Sequence[Any]]
    ) -> int:
        """Delete the rows matching ``where`` and copy ``rows`` in, in one transaction (a recomputed
        ranking or report replaces the old one whole, so readers never see a mix)."""
        columns = ", ".join(spec.column_names)
        with self.connect() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(f"DELETE FROM {spec.name} WHERE {where}", params)
            with cur.copy(f"COPY {spec.name} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(list(spec.pg_types))
                for row in rows:
                    copy.write_row(row)
        return len(rows)


class KafkaResource(dg.ConfigurableResource):
    """Publishes registry-typed messages to Kafka topics (names carry the settings' topic prefix)."""

    bootstrap: str
    topic_prefix: str = ""
    config_dir: str

    def settings(self) -> Settings:
        return Settings(
            kafka_bootstrap=self.bootstrap or None,
            topic_prefix=self.topic_prefix,
            config_dir=Path(self.config_dir),
        )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def ensure_topic(self, name: str) -> str:
        """Create the registry topic ``name`` if missing; returns its full (prefixed) name."""
        from pets.pipelines.kafka_io import ensure_topics

        ensure_topics(self.settings(), [name])
        return self.topic(name)

    def consumer(self) -> Any:
        """A group-less consumer (the caller assigns partitions and keeps offsets itself)."""
        from pets.pipelines.kafka_io import consumer

        return consumer(self.settings(), client_id="pets-dagster")

    def publish(self, name: str, messages: Iterable[tuple[str, msgspec.Struct]]) -> int:
        """Send (key, message) pairs to the registry topic ``name``; returns how many were acked."""
        from pets.pipelines.kafka_io import producer
        from pets.schemas.codec import encode

        self.ensure_topic(name)
        out = producer(self.settings(), linger_ms=20)
        try:
            futures = [out.send(self.topic(name), key=k.encode(), value=encode(m)) for k, m in messages]
            out.flush()
            for future in futures:
                future.get(timeout=30)
        finally:
            out.close()
        return len(futures)


class GammaResource(dg.ConfigurableResource):
    """The Gamma markets API (or a local server speaking it)."""

    base_url: str
    page_size: int = 500

    def client(self) -> Any:
        from pets.pipelines.polymarket.gamma import GammaClient

        return GammaClient(self.base_url, page_size=self.page_size)


class DataApiResource(dg.ConfigurableResource):
    """The Polymarket Data API (``/trades`` of markets or wallets), paged by limit/offset."""

    base_url: str
    page_size: int = DATA_API_MAX_PAGE

    def iter_trades(
        self, *, markets: Sequence[str] = (), user: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every trade (maker and taker side: takerOnly=false) of the markets / the wallet, all pages."""
        from pets.pipelines.polymarket.http import JsonHttpClient

        http = JsonHttpClient(self.base_url)
        offset = 0
        while True:
            page = http.get(
                "/trades",
                {
                    "market": ",".join(markets) or None,
                    "user": user,
                    "takerOnly": False,
                    "limit": self.page_size,
                    "offset": offset,
                },
            )
            if not isinstance(page, list):
                raise ValueError(
                    f"{self.base_url}/trades: expected a JSON array page, got {type(page).__name__}"
                )
            if not page:
                return
            yield from page
            offset += len(page)


_VERSION = re.compile(r"^v(\d{4,})$")


class ModelVersion(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str
    path: str
    created_at: str
    metrics: dict[str, Any]
    promoted: bool
    reason: str


class ModelStoreResource(dg.ConfigurableResource):
    """Versioned model artifacts on local disk: ``<root>/<name>/vNNNN/{model.json,metrics.json}`` and
    ``<root>/<name>/current`` naming the promoted version."""

    root: str

    def _dir(self, name: str) -> Path:
        return Path(self.root) / name

    def versions(self, name: str) -> list[str]:
        folder = self._dir(name)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and _VERSION.match(p.name))

    def current_version(self, name: str) -> str | None:
        pointer = self._dir(name) / "current"
        return pointer.read_text().strip() if pointer.exists() else None

    def read(self, name: str, version: str) -> tuple[bytes, dict[str, Any]]:
        folder = self._dir(name) / version
        return (folder / "model.json").read_bytes(), json.loads((folder / "metrics.json").read_text())

    def save(
        self, name: str, model: bytes, metrics: Mapping[str, Any], *, promote: bool, reason: str
    ) -> ModelVersion:
        """Write a new version (never overwriting one); point ``current`` at it when promoted."""
        existing = self.versions(name)
        number = int(existing[-1][1:]) + 1 if existing else 1
        version = f"v{number:04d}"
        folder = self._dir(name) / version
        folder.mkdir(parents=True, exist_ok=False)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        record = ModelVersion(
            name=name,
            version=version,
            path=str(folder),
            created_at=created,
            metrics=dict(metrics),
            promoted=promote,
            reason=reason,
        )
        (folder / "model.json").write_bytes(model)
        (folder / "metrics.json").write_bytes(msgspec.json.format(msgspec.json.encode(record)))
        if promote:
            pointer = self._dir(name) / "current"
            tmp = pointer.with_suffix(f".tmp{time.monotonic_ns()}")
            tmp.write_text(version + "\n")
            tmp.replace(pointer)  # atomic: readers see the old or the new version, never half
        return record
