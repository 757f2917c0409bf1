"""Wire messages as journal records (Parquet) and as database rows (pets.pipelines.tables).

One function per message type and destination, so the run journal, the executor flow and the
database always agree on what a column holds. Journal records keep our integer clocks (`*_ns`,
venue `*_ms`); database rows use timestamptz (`ts_from_ns` / `ts_from_ms`).
"""

from __future__ import annotations

from typing import Any

from pets.pipelines import tables
from pets.pipelines.tables import ts_from_ms, ts_from_ns
from pets.schemas.control import RiskAlert
from pets.schemas.orders import (
    ApprovedOrder,
    ExecutionReport,
    OrderDenied,
    OrderIntent,
    PnlSnapshot,
    Position,
)

Record = dict[str, Any]
Row = tuple[Any, ...]

_INTENT_FIELDS = (
    "client_order_id",
    "bot_id",
    "strategy_type",
    "action",
    "market",
    "asset_id",
    "side",
    "price",
    "size",
    "order_type",
    "post_only",
    "category",
    "group_id",
    "replaces",
    "source_ts_ms",
    "created_ns",
)


# what made a signal- or model-driven bot propose the order (OrderIntent.cause), flattened
_CAUSE_FIELDS = ("source", "signal_id", "model_version", "probability", "note")
CAUSE_COLUMNS = tuple(f"cause_{name}" for name in _CAUSE_FIELDS)
INTENT_COLUMNS = (*_INTENT_FIELDS, *CAUSE_COLUMNS)
APPROVED_COLUMNS = (*INTENT_COLUMNS, "requested_size", "sequence", "approved_ns")
DENIED_COLUMNS = (*INTENT_COLUMNS, "rule", "reason", "denied_ns")


def intent_record(intent: OrderIntent) -> Record:
    record = {name: getattr(intent, name) for name in _INTENT_FIELDS}
    cause = intent.cause
    for name, column in zip(_CAUSE_FIELDS, CAUSE_COLUMNS, strict=True):
        record[column] = None if cause is None else getattr(cause, name)
    return record


def approved_record(approved: ApprovedOrder) -> Record:
    record = intent_record(approved.intent)
    record["requested_size"] = record.pop("size")
    record.update(size=approved.size, sequence=approved.sequence, approved_ns=approved.approved_ns)
    return record


def denied_record(denied: OrderDenied) -> Record:
    record = intent_record(denied.intent)
    record.update(rule=denied.rule, reason=denied.reason, denied_ns=denied.denied_ns)
    return record


def struct_record(message: ExecutionReport | Position | PnlSnapshot | RiskAlert) -> Record:
    return {name: getattr(message, name) for name in message.__struct_fields__}


# ------------------------------------------------------------------------------ database rows


def report_row(report: ExecutionReport) -> Row:
    return tables.EXECUTION_REPORTS.row(
        {
            **struct_record(report),
            "ts": ts_from_ns(report.ts_ns),
            "source_ts": ts_from_ms(report.source_ts_ms),
        }
    )


def position_row(position: Position) -> Row:
    """One row for `positions` and `position_history` (same columns)."""
    return tables.POSITIONS.row({**struct_record(position), "ts": ts_from_ns(position.ts_ns)})


def pnl_row(snapshot: PnlSnapshot) -> Row:
    return tables.PNL_SNAPSHOTS.row({**struct_record(snapshot), "ts": ts_from_ns(snapshot.ts_ns)})
