"""The database output of the flows that store rows (market_state, risk, executor): (table, row)
items written in batches, one transaction per table, through TimescaleWriter."""

from __future__ import annotations

from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

DbRow = tuple[str, tuple[Any, ...]]  # (table, row in the table's column order)


class TimescaleSink(DynamicSink[DbRow]):
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    def build(self, step_id: str, worker_index: int, worker_count: int) -> StatelessSinkPartition[DbRow]:
        return _TimescalePartition(self._dsn)


class _TimescalePartition(StatelessSinkPartition[DbRow]):
    def __init__(self, dsn: str) -> None:
        from pets.pipelines.timescale import TimescaleWriter

        self._writer = TimescaleWriter(dsn)

    def write_batch(self, items: list[DbRow]) -> None:
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for table, row in items:
            by_table.setdefault(table, []).append(row)
        for table, rows in by_table.items():
            self._writer.write(table, rows)

    def close(self) -> None:
        self._writer.close()
