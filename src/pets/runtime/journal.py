"""The run journal: every intent, decision, report, position and P&L snapshot of one run.

Kept in memory during the run (the messages themselves), written once at the end:
- `write_parquet(dir)`: one Parquet file per table (intents, approved, denials, fills, reports,
  positions, pnl, alerts, markets, mids). Money is Decimal(38, 8): exact (amounts carry at most 7
  decimals: prices 4 (mids 5) x sizes 2), and a value that would not fit raises instead of rounding.
  Beside them `dead_letters.jsonl`: every input the run refused (a DeadLetter per line, with the
  reason and the start of the input).
- mids: each token's mid-price path, compact: a point when the mid changed, at most one per second of
  venue time (the latest of that second), fed by `on_top_of_book` (the run subscribes it to md.tob).
The journal is the run's only output: a simulated or replayed run never writes the database the live
flows write (docs/running.md), so simulated fills cannot pass for live ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from pets.pipelines import records
from pets.schemas.codec import encode
from pets.schemas.control import DeadLetter, RiskAlert
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import (
    ApprovedOrder,
    ExecutionReport,
    IntentCause,
    OrderDenied,
    OrderIntent,
    PnlSnapshot,
    Position,
)

DEAD_LETTERS_FILE: Final = "dead_letters.jsonl"
MID_STEP_MS: Final = 1_000  # at most one mid point per token per second of venue time
MONEY_SCALE: Final = 8
_QUANTUM: Final = Decimal(1).scaleb(-MONEY_SCALE)
MONEY_COLUMNS: Final = frozenset(
    {
        "price",
        "size",
        "requested_size",
        "order_price",
        "order_size",
        "last_qty",
        "last_px",
        "cum_qty",
        "leaves_qty",
        "fee",
        "rebate",
        "qty",
        "avg_price",
        "cost",
        "realized_pnl",
        "cash",
        "equity",
        "unrealized_pnl",
        "fees",
        "rebates",
        "exposure",
        "max_drawdown",
        "probability",
        "cause_probability",
        "tick_size",
        "min_order_size",
        "fee_rate",
        "mid",
    }
)
INT_COLUMNS: Final = frozenset({"sequence", "open_orders", "trades", "wins", "losses"})
BOOL_COLUMNS: Final = frozenset({"post_only", "neg_risk", "active", "closed", "accepting_orders"})
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "intents": records.INTENT_COLUMNS,
    "approved": records.APPROVED_COLUMNS,
    "denials": records.DENIED_COLUMNS,
    "fills": ExecutionReport.__struct_fields__,
    "reports": ExecutionReport.__struct_fields__,
    "positions": Position.__struct_fields__,
    "pnl": PnlSnapshot.__struct_fields__,
    "alerts": RiskAlert.__struct_fields__,
    "markets": MarketInfo.__struct_fields__,
    "mids": ("market", "asset_id", "ts_ms", "mid"),
}


@dataclass(slots=True)
class Journal:
    intents: list[OrderIntent] = field(default_factory=list)
    approved: list[ApprovedOrder] = field(default_factory=list)
    denials: list[OrderDenied] = field(default_factory=list)
    reports: list[ExecutionReport] = field(default_factory=list)
    position_history: list[Position] = field(default_factory=list)
    pnl: list[PnlSnapshot] = field(default_factory=list)
    alerts: list[RiskAlert] = field(default_factory=list)
    markets: dict[str, MarketInfo] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    mids: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)  # token -> (venue ms, mid)
    mid_markets: dict[str, str] = field(default_factory=dict)  # token -> its market

    def on_top_of_book(self, tob: TopOfBook) -> None:
        """Keep the token's mid when it changed, one point per second of venue time (the latest)."""
        mid = tob.mid
        if mid is None:
            return
        points = self.mids.get(tob.asset_id)
        if points is None:
            self.mids[tob.asset_id] = [(tob.ts_ms, mid)]
            self.mid_markets[tob.asset_id] = tob.market
            return
        last_ms, last_mid = points[-1]
        if mid == last_mid:
            return
        if tob.ts_ms // MID_STEP_MS == last_ms // MID_STEP_MS:
            points[-1] = (tob.ts_ms, mid)
        else:
            points.append((tob.ts_ms, mid))

    def why(self, client_order_id: str) -> IntentCause | None:
        """What made the bot propose this order ("why did bot 9 buy this?"): the signal id, the
        model version and the probability it used; None for an order no signal or model caused."""
        for intent in self.intents:
            if intent.client_order_id == client_order_id:
                return intent.cause
        return None

    @property
    def fills(self) -> list[ExecutionReport]:
        return [r for r in self.reports if r.last_qty > 0]

    def tables(self, positions: Sequence[Position]) -> dict[str, list[dict[str, Any]]]:
        """Every table as records (column -> value), `positions` being the final positions."""
        return {
            "intents": [records.intent_record(i) for i in self.intents],
            "approved": [records.approved_record(a) for a in self.approved],
            "denials": [records.denied_record(d) for d in self.denials],
            "fills": [records.struct_record(r) for r in self.fills],
            "reports": [records.struct_record(r) for r in self.reports],
            "positions": [records.struct_record(p) for p in positions],
            "pnl": [records.struct_record(s) for s in self.pnl],
            "alerts": [records.struct_record(a) for a in self.alerts],
            "markets": [_market_record(m) for m in self.markets.values()],
            "mids": [
                {"market": self.mid_markets[token], "asset_id": token, "ts_ms": ts_ms, "mid": mid}
                for token, points in self.mids.items()
                for ts_ms, mid in points
            ],
        }

    def write_parquet(self, directory: Path, positions: Sequence[Position]) -> dict[str, Path]:
        """One `<table>.parquet` per table in `directory` (created); returns the paths."""
        directory.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        for name, rows in self.tables(positions).items():
            path = directory / f"{name}.parquet"
            frame_of(name, rows).write_parquet(path)
            written[name] = path
        path = written["dead_letters"] = directory / DEAD_LETTERS_FILE
        path.write_bytes(b"".join(encode(letter) + b"\n" for letter in self.dead_letters))
        return written


def _market_record(info: MarketInfo) -> dict[str, Any]:
    record = {name: getattr(info, name) for name in info.__struct_fields__}
    record["token_ids"] = ",".join(info.token_ids)
    record["outcomes"] = ",".join(info.outcomes)
    record["outcome_prices"] = (
        None if info.outcome_prices is None else ",".join(map(str, info.outcome_prices))
    )
    return record


def frame_of(name: str, rows: list[dict[str, Any]]) -> Any:
    """A polars DataFrame of journal records with exact Decimal money columns."""
    import polars as pl

    schema: dict[str, Any] = {}
    for column in COLUMNS[name]:
        if column in MONEY_COLUMNS:
            schema[column] = pl.Decimal(38, MONEY_SCALE)
        elif column in INT_COLUMNS or column.endswith(("_ns", "_ms")):
            schema[column] = pl.Int64
        elif column in BOOL_COLUMNS:
            schema[column] = pl.Boolean
        else:
            schema[column] = pl.String
    for column, dtype in schema.items():
        if dtype == pl.Decimal(38, MONEY_SCALE):
            for row in rows:
                value = row[column]
                if value is not None and value != value.quantize(_QUANTUM):
                    raise ValueError(f"journal {name}.{column}: {value} has more than {MONEY_SCALE} decimals")
    return pl.DataFrame({c: [row[c] for row in rows] for c in schema}, schema=schema)
