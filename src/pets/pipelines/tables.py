"""What the writer needs to know about each table: its columns in order, their types, its unique key.

These mirror the SQL migrations in ``pets/schemas/sql`` (a test compares them with the migrated
catalog). A row handed to ``TimescaleWriter.write`` is a sequence in ``columns`` order; build it with
``spec.row({...})`` from a mapping (for example ``msgspec.structs.asdict(msg)`` plus ``ts``).
``TABLES`` holds the tables of migrations 0001-0009; other areas declare theirs with ``define_table``.
Timestamps are ``timestamptz`` (microseconds): convert our integer clocks with ``ts_from_ns`` /
``ts_from_ms``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def ts_from_ns(ns: int) -> datetime:
    """Nanoseconds since the epoch -> timezone-aware datetime (exact to the microsecond, floor)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def ts_from_ms(ms: int) -> datetime:
    """The venue's milliseconds since the epoch -> timezone-aware datetime (exact)."""
    return _EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    pg_type: str  # as written in the SQL; also what psycopg's binary COPY `set_types` takes


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # the UNIQUE key a re-delivered row collides on (ON CONFLICT target)
    # Current-state table: a row with the same key and a later (or equal) `ts` replaces the stored one;
    # otherwise rows are append-only and a duplicate key is ignored.
    upsert: bool = False
    # Append-only rows that are unique by this id alone, where the UNIQUE key must also hold ts (a
    # hypertable's unique indexes include its time column): a row whose id is stored (or comes twice
    # in a batch) is skipped, whatever its ts (a migration indexes the column).
    unique_id: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def pg_types(self) -> tuple[str, ...]:
        return tuple(c.pg_type for c in self.columns)

    def position(self, column: str) -> int:
        return self.column_names.index(column)

    def row(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The row in column order from a mapping that holds (at least) every column."""
        missing = [name for name in self.column_names if name not in values]
        if missing:
            raise KeyError(f"table {self.name}: row lacks column(s) {', '.join(missing)}")
        return tuple(values[name] for name in self.column_names)


def define_table(
    name: str, columns: str, key: tuple[str, ...], *, upsert: bool = False, unique_id: str | None = None
) -> TableSpec:
    """Declare a table from "name type, name type, ..." (types as in the SQL, without modifiers).

    Tables of other areas' migrations (0010+) declare their spec with this and pass it to the writer.
    """
    cols = []
    for part in (p.strip() for p in columns.split(",")):
        column_name, _, pg_type = part.partition(" ")
        if not _IDENT.match(column_name) or not pg_type.strip():
            raise ValueError(f"table {name}: {part!r} is not 'column_name type'")
        cols.append(Column(column_name, pg_type.strip()))
    names = [c.name for c in cols]
    if not _IDENT.match(name) or len(set(names)) != len(names):
        raise ValueError(f"table {name}: not a plain identifier, or a column is declared twice")
    unknown = [k for k in key if k not in names]
    if not key or unknown:
        raise ValueError(f"table {name}: key {key} names no column or unknown column(s) {unknown}")
    if unique_id is not None and (unique_id not in names or upsert):
        raise ValueError(f"table {name}: unique_id {unique_id!r} is not a column of an append-only table")
    return TableSpec(name=name, columns=tuple(cols), key=key, upsert=upsert, unique_id=unique_id)


MARKETS = define_table(
    "markets",
    """condition_id text, market_id text, question text, slug text, category text, token_ids text[],
    outcomes text[], neg_risk boolean, neg_risk_market_id text, tick_size numeric, min_order_size numeric,
    end_date timestamptz, active boolean, closed boolean, accepting_orders boolean, outcome_prices numeric[],
    winning_asset_id text, fee_rate numeric, ts timestamptz""",
    key=("condition_id",),
    upsert=True,
)
BOOK_DELTAS = define_table(
    "book_deltas",
    """ts timestamptz, asset_id text, market text, frame_seq bigint, frame_hash text, side text,
    price numeric, size numeric, is_snapshot boolean""",
    key=("asset_id", "ts", "frame_seq", "side", "price"),
)
TOP_OF_BOOK = define_table(
    "top_of_book",
    """ts timestamptz, asset_id text, market text, best_bid numeric, best_ask numeric,
    best_bid_size numeric, best_ask_size numeric, mid numeric, microprice numeric, spread numeric,
    imbalance numeric, tick_size numeric, stale boolean, paired_asset_id text, ask_sum numeric,
    bid_sum numeric, seq bigint""",
    key=("asset_id", "ts", "seq"),
)
TRADES = define_table(
    "trades",
    "ts timestamptz, asset_id text, market text, price numeric, size numeric, side text, "
    "fee_rate_bps numeric, tx_hash text",
    key=("asset_id", "ts", "tx_hash", "side", "price", "size"),
)
SIGNALS = define_table(
    "signals",
    """ts timestamptz, signal_id text, source text, market text, asset_id text, side text,
    probability numeric, confidence numeric, rationale text, expires_at timestamptz""",
    key=("signal_id", "ts"),
)
ORDER_INTENTS = define_table(
    "order_intents",
    """ts timestamptz, client_order_id text, bot_id text, strategy_type text, action text, market text,
    asset_id text, side text, price numeric, size numeric, order_type text, post_only boolean,
    tick_size numeric, min_order_size numeric, neg_risk boolean, category text, probability numeric,
    group_id text, replaces text, source_ts timestamptz, expires_at timestamptz, cause_source text,
    cause_signal_id text, cause_model_version text, cause_probability numeric, cause_note text""",
    key=("client_order_id", "action", "ts"),
)
APPROVED_ORDERS = define_table(
    "approved_orders",
    """ts timestamptz, client_order_id text, sequence bigint, bot_id text, strategy_type text,
    action text, market text, asset_id text, side text, price numeric, requested_size numeric,
    size numeric, order_type text, post_only boolean, category text, group_id text""",
    key=("client_order_id", "action", "ts"),
)
ORDER_DENIALS = define_table(
    "order_denials",
    """ts timestamptz, client_order_id text, bot_id text, strategy_type text, action text, market text,
    asset_id text, side text, price numeric, size numeric, rule text, reason text""",
    key=("client_order_id", "action", "ts"),
)
EXECUTION_REPORTS = define_table(
    "execution_reports",
    """ts timestamptz, report_id text, client_order_id text, venue_order_id text, bot_id text,
    market text, asset_id text, side text, kind text, order_price numeric, order_size numeric,
    last_qty numeric, last_px numeric, cum_qty numeric, leaves_qty numeric, fee numeric, rebate numeric,
    liquidity text, reason text, trade_id text, source_ts timestamptz""",
    key=("report_id", "ts"),
    unique_id="report_id",  # a replayed report is the same report, whatever ts it was given
)
_POSITION_COLUMNS = """bot_id text, market text, asset_id text, qty numeric, avg_price numeric,
    cost numeric, realized_pnl numeric, ts timestamptz"""
POSITIONS = define_table("positions", _POSITION_COLUMNS, key=("bot_id", "market", "asset_id"), upsert=True)
# Same columns in the same order as positions, so one row goes to both.
POSITION_HISTORY = define_table(
    "position_history", _POSITION_COLUMNS, key=("bot_id", "market", "asset_id", "ts")
)
PNL_SNAPSHOTS = define_table(
    "pnl_snapshots",
    """ts timestamptz, bot_id text, cash numeric, equity numeric, realized_pnl numeric,
    unrealized_pnl numeric, fees numeric, rebates numeric, exposure numeric, open_orders integer,
    trades integer, wins integer, losses integer, max_drawdown numeric""",
    key=("bot_id", "ts"),
)
BOT_STATUS = define_table(
    "bot_status", "bot_id text, state text, reason text, ts timestamptz", key=("bot_id",), upsert=True
)
RISK_EVENTS = define_table(
    "risk_events",
    """ts timestamptz, alert_id text, kind text, bot_id text, rule text, message text, severity text,
    until_ts timestamptz""",
    key=("alert_id", "ts"),
)
# Keyed by item id alone (not a hypertable): a re-polled feed yields the same item with a new
# received time, and it must still be stored once.
NEWS_ITEMS = define_table(
    "news_items",
    """ts timestamptz, item_id text, source text, feed_url text, title text, summary text, link text,
    published timestamptz, tags text[]""",
    key=("item_id",),
)
ESPORTS_EVENTS = define_table(
    "esports_events",
    """ts timestamptz, event_id text, match_id text, game text, event_type text, game_time_ms bigint,
    team text, payload jsonb""",
    key=("event_id", "ts"),
)
WALLET_FILLS = define_table(
    "wallet_fills",
    """ts timestamptz, tx_hash text, log_index integer, block_number bigint, exchange text, wallet text,
    counterparty text, asset_id text, side text, price numeric, shares numeric, usdc numeric,
    fee numeric""",
    key=("tx_hash", "log_index", "wallet", "ts"),
)
# A recomputed ranking for a date replaces the stored one.
WHALE_RANKINGS = define_table(
    "whale_rankings",
    """ranking_date date, rank integer, wallet text, pnl numeric, volume numeric, trades integer,
    markets integer, win_rate numeric, roi numeric""",
    key=("ranking_date", "wallet"),
    upsert=True,
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        MARKETS, BOOK_DELTAS, TOP_OF_BOOK, TRADES, SIGNALS, ORDER_INTENTS, APPROVED_ORDERS,
        ORDER_DENIALS, EXECUTION_REPORTS, POSITIONS, POSITION_HISTORY, PNL_SNAPSHOTS, BOT_STATUS,
        RISK_EVENTS, NEWS_ITEMS, ESPORTS_EVENTS, WALLET_FILLS, WHALE_RANKINGS,
    )
}


def table_spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}") from None
