"""The TimescaleDB writer against a real, migrated PostgreSQL database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from pets.cli import main
from pets.pipelines.migrations import migrate
from pets.pipelines.tables import (
    POSITIONS,
    TABLES,
    TOP_OF_BOOK,
    TableSpec,
    define_table,
    ts_from_ms,
    ts_from_ns,
)
from pets.pipelines.timescale import TimescaleWriter

T0 = 1_750_000_000_000  # venue ms


@pytest.fixture
def db(fresh_db: str) -> str:
    migrate(fresh_db)
    return fresh_db


def _tob(seq: int, *, bid: str = "0.48", ask: str = "0.52", asset: str = "yes-token") -> tuple[Any, ...]:
    return TOP_OF_BOOK.row({
        "ts": ts_from_ms(T0 + seq), "asset_id": asset, "market": "0xcondition",
        "best_bid": Decimal(bid), "best_ask": Decimal(ask), "best_bid_size": Decimal("1520.37"),
        "best_ask_size": Decimal("88.00"), "mid": (Decimal(bid) + Decimal(ask)) / 2, "microprice": None,
        "spread": Decimal(ask) - Decimal(bid), "imbalance": None, "tick_size": Decimal("0.01"),
        "stale": False, "paired_asset_id": "no-token", "ask_sum": None, "bid_sum": None, "seq": seq,
    })


def _rows(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def test_timestamps_convert_exactly() -> None:
    assert ts_from_ns(1_750_000_000_123_456_789) == datetime(2025, 6, 15, 15, 6, 40, 123456, tzinfo=UTC)
    assert ts_from_ms(1_750_000_000_123) == datetime(2025, 6, 15, 15, 6, 40, 123000, tzinfo=UTC)


def test_table_declarations_and_rows_are_checked() -> None:
    spec = define_table("fills_x", "ts timestamptz, fill_id text, qty numeric", key=("fill_id", "ts"))
    assert spec.pg_types == ("timestamptz", "text", "numeric")
    assert spec.row({"qty": 1, "fill_id": "f", "ts": 2, "extra": 3}) == (2, "f", 1)
    with pytest.raises(KeyError, match="qty"):
        spec.row({"fill_id": "f", "ts": 2})
    with pytest.raises(ValueError, match="unknown column"):
        define_table("fills_x", "ts timestamptz, fill_id text", key=("id", "ts"))
    with pytest.raises(ValueError, match="'qty'"):
        define_table("fills_x", "ts timestamptz, qty", key=("ts",))


@pytest.mark.integration
def test_decimals_are_stored_exactly(db: str) -> None:
    tiny = Decimal("0.123456789012345678901234567890")
    row = list(_tob(1))
    row[TOP_OF_BOOK.position("microprice")] = tiny
    row[TOP_OF_BOOK.position("best_ask_size")] = Decimal("88.00")
    with TimescaleWriter(db) as writer:
        assert writer.write("top_of_book", [row]) == 1
    stored = _rows(db, "SELECT microprice, best_ask_size, mid, best_bid_size FROM top_of_book")
    assert stored == [(tiny, Decimal("88.00"), Decimal("0.50"), Decimal("1520.37"))]
    assert str(stored[0][1]) == "88.00" and str(stored[0][0]) == str(tiny)  # scale kept, no float


@pytest.mark.integration
def test_rewriting_the_same_batch_inserts_nothing(db: str) -> None:
    batch = [_tob(1), _tob(2), _tob(3, asset="no-token")]
    with TimescaleWriter(db) as writer:
        assert writer.write(TOP_OF_BOOK, batch) == 3
        assert writer.write(TOP_OF_BOOK, batch) == 0
    assert _rows(db, "SELECT count(*) FROM top_of_book") == [(3,)]


@pytest.mark.integration
@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_a_batch_with_one_duplicate_and_one_new_row_inserts_one(db: str, copy: bool) -> None:
    with TimescaleWriter(db, copy=copy) as writer:
        assert writer.write(TOP_OF_BOOK, [_tob(1), _tob(2)]) == 2
        assert writer.write(TOP_OF_BOOK, [_tob(2), _tob(3)]) == 1
        assert writer.write(TOP_OF_BOOK, [_tob(4), _tob(4)]) == 1  # repeated inside one batch
    assert _rows(db, "SELECT seq FROM top_of_book ORDER BY seq") == [(1,), (2,), (3,), (4,)]


@pytest.mark.integration
@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_an_execution_report_is_stored_once_by_its_id_whatever_its_ts(db: str, copy: bool) -> None:
    from pets.pipelines.tables import EXECUTION_REPORTS

    def report(report_id: str, ts_ms: int) -> tuple[Any, ...]:
        values: dict[str, Any] = dict.fromkeys(EXECUTION_REPORTS.column_names)
        values.update(
            ts=ts_from_ms(ts_ms), report_id=report_id, client_order_id="o1", bot_id="bot_05",
            market="0xcondition", asset_id="yes-token", side="BUY", kind="fill",
            order_price=Decimal("0.41"), order_size=Decimal(10), last_qty=Decimal(10),
            last_px=Decimal("0.41"), cum_qty=Decimal(10), leaves_qty=Decimal(0), fee=Decimal(0),
            rebate=Decimal(0), source_ts=ts_from_ms(ts_ms),
        )  # fmt: skip
        return EXECUTION_REPORTS.row(values)

    with TimescaleWriter(db, copy=copy) as writer:
        assert writer.write(EXECUTION_REPORTS, [report("o1:fill:1", T0)]) == 1
        # re-emitted after a crash with another ts (what the executor once did), alone and in a batch
        assert writer.write(EXECUTION_REPORTS, [report("o1:fill:1", T0 + 5)]) == 0
        batch = [report("o2:fill:1", T0 + 9), report("o2:fill:1", T0 + 7), report("o1:fill:1", T0 + 1)]
        assert writer.write(EXECUTION_REPORTS, batch) == 1
    stored = _rows(db, "SELECT report_id, ts FROM execution_reports ORDER BY report_id")
    assert stored == [("o1:fill:1", ts_from_ms(T0)), ("o2:fill:1", ts_from_ms(T0 + 7))]


def _position(qty: str, ts_ms: int, bot: str = "mm-1") -> tuple[Any, ...]:
    return POSITIONS.row({
        "bot_id": bot, "market": "0xcondition", "asset_id": "yes-token", "qty": Decimal(qty),
        "avg_price": Decimal("0.41"), "cost": Decimal(qty) * Decimal("0.41"),
        "realized_pnl": Decimal("0"), "ts": ts_from_ms(ts_ms),
    })


@pytest.mark.integration
@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_current_state_tables_keep_the_newest_row(db: str, copy: bool) -> None:
    with TimescaleWriter(db, copy=copy) as writer:
        assert writer.write("positions", [_position("10", T0)]) == 1
        assert writer.write("positions", [_position("25", T0 + 5)]) == 1
        assert writer.write("positions", [_position("99", T0 + 1)]) == 0  # older: ignored
        assert writer.write("positions", [_position("25", T0 + 5)]) == 0  # replay: no change
        # Two states of one key in a batch: the later ts wins, whatever the order.
        assert writer.write("positions", [_position("40", T0 + 9), _position("30", T0 + 7)]) == 1
    assert _rows(db, "SELECT qty, ts FROM positions") == [(Decimal("40"), ts_from_ms(T0 + 9))]


def _sample(spec: TableSpec) -> tuple[Any, ...]:
    """One valid row for any table, from its column types."""
    samples: dict[str, Any] = {
        "text": "x", "numeric": Decimal("0.55"), "timestamptz": ts_from_ms(T0), "boolean": True,
        "bigint": 2**40, "integer": 7, "text[]": ["a", "b"], "numeric[]": [Decimal("0.5"), Decimal("0.5")],
        "jsonb": {"killer": "Faker", "gold": [1, 2]}, "date": date(2026, 7, 1),
    }
    return tuple(f"{c.name}-1" if c.pg_type == "text" else samples[c.pg_type] for c in spec.columns)


@pytest.mark.integration
@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_every_table_round_trips_and_ignores_a_replay(db: str, copy: bool) -> None:
    with TimescaleWriter(db, copy=copy) as writer:
        for name, spec in TABLES.items():
            row = _sample(spec)
            assert writer.write(name, [row]) == 1, name
            assert writer.write(name, [row]) == 0, name
            columns = ", ".join(spec.column_names)
            assert _rows(db, f"SELECT {columns} FROM {name}") == [row], name


@pytest.mark.integration
def test_the_writer_reconnects_after_losing_its_connection(db: str) -> None:
    with TimescaleWriter(db, retry_delay_s=0.05) as writer:
        assert writer.write(TOP_OF_BOOK, [_tob(1)]) == 1
        killed = _rows(
            db,
            """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()""",
        )
        assert killed == [(True,)]
        assert writer.write(TOP_OF_BOOK, [_tob(1), _tob(2)]) == 1
    assert _rows(db, "SELECT count(*) FROM top_of_book") == [(2,)]


@pytest.mark.integration
def test_bad_rows_are_refused_with_the_table_named(db: str) -> None:
    with TimescaleWriter(db) as writer:
        with pytest.raises(ValueError, match="top_of_book"):
            writer.write(TOP_OF_BOOK, [_tob(1)[:-1]])
        with pytest.raises(KeyError, match="no_such_table"):
            writer.write("no_such_table", [])
        null_asset = list(_tob(1))
        null_asset[TOP_OF_BOOK.position("asset_id")] = None
        with pytest.raises(psycopg.errors.NotNullViolation):
            writer.write(TOP_OF_BOOK, [_tob(2), null_asset])
        assert writer.write(TOP_OF_BOOK, [_tob(2)]) == 1  # the failed batch left nothing behind
    assert _rows(db, "SELECT seq FROM top_of_book") == [(2,)]


@pytest.mark.integration
def test_bench_copy_reports_writer_replay_and_raw_copy(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PETS_POSTGRES_DSN", postgres_dsn)
    result = CliRunner().invoke(main, ["bench", "copy", "--rows", "300", "--batch", "100", "--json"],
                                catch_exceptions=False)
    report = json.loads(result.output)
    written = {r["mode"]: r["written"] for r in report["results"]}
    assert written == {"writer": 300, "writer_replay": 0, "raw_copy": 300}
    assert all(r["rows_per_s"] > 0 for r in report["results"])
