"""The desk over the database the flows write (`pets api serve`): states read from PostgreSQL /
TimescaleDB, commands sent on bot.control through Kafka. The API never sits in the trading path:
it reads what the flows stored and writes only commands, which the risk flow and the bots apply.

Where the flows store no figure the risk engine holds in memory, the database view derives it:
a bot's drawdown from its equity peak in pnl_snapshots (the breaker's definition,
risk.circuit_breakers.drawdown), its consecutive losses from the losses counted since its last win
in those snapshots (exact unless a win and a loss closed between two snapshots).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from decimal import Decimal
from typing import Any

import psycopg

from pets.api.state import (
    RECENT,
    DenialRow,
    DeskState,
    Fill,
    FlowHealth,
    MarketLabel,
    OpenOrder,
    events_between,
    utc_midnight_ns,
)
from pets.execution.metrics import PORTFOLIO
from pets.pipelines.tables import PNL_SNAPSHOTS
from pets.risk.circuit_breakers import drawdown
from pets.schemas.config import PetsConfig, TradingMode
from pets.schemas.control import ALL_BOTS, ControlCommand, RiskAlert
from pets.schemas.market_data import mark_of
from pets.schemas.orders import PnlSnapshot, Position
from pets.settings import Settings

NS = "(extract(epoch from {0}) * 1000000)::bigint * 1000"
# the table each flow writes as it works: its newest row is the flow's last sign of life
FLOW_TABLES = {
    "market_state": "top_of_book",
    "risk": "approved_orders",
    "executor": "execution_reports",
    "pnl": "pnl_snapshots",
}
REFRESH_S = 1.0


def _ns(column: str) -> str:
    return NS.format(column)


class DatabaseDesk:
    """Reads a state at most every REFRESH_S (the dashboard polls every second), keeps the events seen
    between consecutive states for /events."""

    source = "database"

    def __init__(self, settings: Settings, config: PetsConfig, refresh_s: float = REFRESH_S) -> None:
        self.settings = settings
        self.config = config
        self.refresh_s = refresh_s
        self._state: DeskState | None = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()
        self.events: deque[dict[str, Any]] = deque(maxlen=2_000)
        self.sequence = 0

    # ------------------------------------------------------------------ the desk protocol

    def current(self) -> DeskState:
        with self._lock:
            if self._state is None or time.monotonic() - self._read_at >= self.refresh_s:
                state = read_state(self.settings, self.config)
                for event in events_between(self._state, state):
                    self.sequence += 1
                    self.events.append({"seq": self.sequence, **event})
                self._state, self._read_at = state, time.monotonic()
            return self._state

    def events_after(self, seq: int) -> list[dict[str, Any]]:
        self.current()
        return [e for e in list(self.events) if e["seq"] > seq]

    def last_seq(self) -> int:
        self.current()
        return self.sequence

    def control(self, make: Any) -> ControlCommand:
        from pets.api.control import publish_command

        return publish_command(self.settings, make)


def read_state(settings: Settings, config: PetsConfig) -> DeskState:
    """The desk's state from the database; a database that does not answer is a degraded state."""
    simulated = config.system.trading.mode == TradingMode.PAPER
    now_ns = time.time_ns()
    problems: list[str] = []
    kafka = _kafka_problem(settings)
    if kafka:
        problems.append(kafka)
    if not settings.postgres_dsn:
        problems.append("no database configured (PETS_POSTGRES_DSN / pets infra up)")
        return DeskState(source="database", simulated=simulated, now_ns=now_ns, problems=problems)
    try:
        with psycopg.connect(settings.postgres_dsn, connect_timeout=5) as conn:
            return _read(conn, settings, config, simulated, now_ns, problems)
    except psycopg.Error as exc:
        problems.append(f"PostgreSQL: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
        return DeskState(source="database", simulated=simulated, now_ns=now_ns, problems=problems)


def _kafka_problem(settings: Settings) -> str | None:
    if not settings.kafka_bootstrap:
        return "no Kafka configured (PETS_KAFKA_BOOTSTRAP / pets infra up): control actions cannot be sent"
    from pets.pipelines.kafka_io import broker_unready

    why = broker_unready(settings.kafka_bootstrap, timeout_ms=1_500)
    return None if why is None else f"Kafka: {why}"


def _read(
    conn: psycopg.Connection,
    settings: Settings,
    config: PetsConfig,
    simulated: bool,
    now_ns: int,
    problems: list[str],
) -> DeskState:
    missing = [
        name
        for name in ("pnl_snapshots", "positions", "execution_reports", "bot_status", "risk_events")
        if not _exists(conn, name)
    ]
    if missing:
        problems.append(f"tables missing: {', '.join(missing)} (run `pets db migrate`)")
        return DeskState(source="database", simulated=simulated, now_ns=now_ns, problems=problems)
    columns = [c for c in PNL_SNAPSHOTS.column_names if c != "ts"]
    snapshots = [
        PnlSnapshot(ts_ns=row[0], **dict(zip(columns, row[1:], strict=True)))
        for row in conn.execute(
            f"SELECT {_ns('ts')}, {', '.join(columns)} FROM pnl_snapshots ORDER BY ts, bot_id"
        ).fetchall()
    ]
    fills = [
        Fill(*row)
        for row in conn.execute(
            f"""SELECT * FROM (SELECT report_id, {_ns("ts")} AS t, bot_id, client_order_id, market, asset_id,
                side, last_qty, coalesce(last_px, order_price), fee, rebate, liquidity
                FROM execution_reports WHERE last_qty > 0 ORDER BY ts DESC LIMIT {RECENT}) f ORDER BY t"""
        ).fetchall()
    ]
    orders = [
        OpenOrder(*row)
        for row in conn.execute(
            f"""SELECT client_order_id, {_ns("ts")}, bot_id, market, asset_id, side, order_price, order_size,
                leaves_qty FROM (SELECT DISTINCT ON (client_order_id) * FROM execution_reports
                ORDER BY client_order_id, ts DESC) last
                WHERE kind IN ('ack', 'partial_fill') AND leaves_qty > 0 ORDER BY ts"""
        ).fetchall()
    ]
    positions = [
        Position(bot_id=b, market=m, asset_id=a, qty=q, avg_price=p, cost=c, realized_pnl=r, ts_ns=t)
        for b, m, a, q, p, c, r, t in conn.execute(
            f"""SELECT bot_id, market, asset_id, qty, avg_price, cost, realized_pnl, {_ns("ts")}
                FROM positions WHERE qty <> 0 ORDER BY bot_id, market, asset_id"""
        ).fetchall()
    ]
    opened = {
        (b, a): t
        for b, a, t in conn.execute(
            f"""SELECT h.bot_id, h.asset_id, min({_ns("h.ts")}) FROM position_history h
                JOIN positions p ON p.bot_id = h.bot_id AND p.asset_id = h.asset_id AND p.qty <> 0
                WHERE h.ts > coalesce((SELECT max(z.ts) FROM position_history z WHERE z.bot_id = h.bot_id
                    AND z.asset_id = h.asset_id AND z.qty = 0), '-infinity')
                GROUP BY h.bot_id, h.asset_id"""
        ).fetchall()
    }
    tokens = [p.asset_id for p in positions]
    marks: dict[str, Decimal] = {}
    if tokens and _exists(conn, "top_of_book"):
        # the latest top may be one-sided (after a game's end): the flows' mark, not a stale mid; the
        # last two-sided mid is looked up only for such a top
        for asset, mid, bid, ask, last_mid in conn.execute(
            """SELECT DISTINCT ON (asset_id) asset_id, mid, best_bid, best_ask,
                   CASE WHEN mid IS NULL THEN (SELECT l.mid FROM top_of_book l WHERE l.asset_id = t.asset_id
                       AND l.mid IS NOT NULL ORDER BY l.ts DESC LIMIT 1) END
               FROM top_of_book t WHERE asset_id = ANY(%s) ORDER BY asset_id, ts DESC""",
            (tokens,),
        ).fetchall():
            mark = mark_of(mid, bid, ask, last_mid)
            if mark is not None:
                marks[asset] = mark
    markets: dict[str, MarketLabel] = {}
    wanted = sorted({p.market for p in positions})
    if wanted and _exists(conn, "markets"):
        for cid, question, category, token_ids, outcomes in conn.execute(
            "SELECT condition_id, question, category, token_ids, outcomes FROM markets "
            "WHERE condition_id = ANY(%s)",
            (wanted,),
        ).fetchall():
            markets[cid] = MarketLabel(question, category, dict(zip(token_ids, outcomes, strict=False)))
    denials = [
        DenialRow(*row)
        for row in conn.execute(
            f"""SELECT * FROM (SELECT client_order_id, {_ns("ts")} AS t, bot_id, market, rule, reason
                FROM order_denials ORDER BY ts DESC LIMIT {RECENT}) d ORDER BY t"""
        ).fetchall()
    ]
    denial_counts = [
        (b, r, int(n))
        for b, r, n in conn.execute(
            "SELECT bot_id, rule, count(*) FROM order_denials GROUP BY 1, 2"
        ).fetchall()
    ]
    alerts = [
        RiskAlert(alert_id=a, kind=k, bot_id=b, rule=r, message=m, severity=s, ts_ns=t, until_ns=u)
        for a, k, b, r, m, s, t, u in conn.execute(
            f"""SELECT * FROM (SELECT alert_id, kind, bot_id, rule, message, severity, {_ns("ts")} AS t,
                CASE WHEN until_ts IS NULL THEN NULL ELSE {_ns("until_ts")} END
                FROM risk_events ORDER BY ts DESC LIMIT {RECENT}) e ORDER BY t"""
        ).fetchall()
    ]
    midnight = utc_midnight_ns(now_ns)
    trades_today: dict[str, int] = dict(
        conn.execute(
            "SELECT bot_id, count(*)::int FROM execution_reports WHERE last_qty > 0 "
            "AND ts >= to_timestamp(%s) GROUP BY bot_id",
            (midnight / 1e9,),
        ).fetchall()
    )
    latency = {
        b: float(ms)
        for b, ms in conn.execute(
            """SELECT a.bot_id, avg(extract(epoch from a.ts - i.source_ts) * 1000) FROM approved_orders a
               JOIN order_intents i ON i.client_order_id = a.client_order_id AND i.action = a.action
               WHERE a.ts >= to_timestamp(%s) AND a.action IN ('place', 'replace') GROUP BY a.bot_id""",
            (midnight / 1e9,),
        ).fetchall()
        if ms is not None
    }
    status = {
        b: (s, r) for b, s, r in conn.execute("SELECT bot_id, state, reason FROM bot_status").fetchall()
    }
    return DeskState(
        source="database",
        simulated=simulated,
        now_ns=now_ns,
        snapshots=snapshots,
        fills=fills,
        orders=orders,
        positions=positions,
        opened_ns=opened,
        marks=marks,
        markets=markets,
        risk=_risk(config, snapshots, status, orders),
        denials=denials,
        denial_counts=denial_counts,
        alerts=alerts,
        trades_today=trades_today,
        latency_ms=latency,
        flows=_flows(conn, settings, now_ns),
        problems=problems,
    )


def _exists(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def _risk(
    config: PetsConfig,
    snapshots: list[PnlSnapshot],
    status: dict[str, tuple[str, str]],
    orders: list[OpenOrder],
) -> dict[str, Any]:
    """The risk engine's snapshot() shape from what the flows stored (module docstring)."""
    peaks: dict[str, Decimal] = {}
    last: dict[str, PnlSnapshot] = {}
    losing_since_win: dict[str, int] = {}
    for snap in snapshots:
        previous = last.get(snap.bot_id)
        peaks[snap.bot_id] = max(peaks.get(snap.bot_id, snap.equity), snap.equity)
        if previous is None or snap.wins > previous.wins:
            losing_since_win[snap.bot_id] = snap.losses if previous is None and snap.wins == 0 else 0
        else:
            losing_since_win[snap.bot_id] += snap.losses - previous.losses
        last[snap.bot_id] = snap
    bots: dict[str, Any] = {}
    for bot in config.bots:
        stored = status.get(bot.id)
        latest = last.get(bot.id)
        bots[bot.id] = {
            # the risk engine's default: a state is stored when a command or a breaker changes it
            "state": stored[0] if stored else "RUNNING",
            "reason": stored[1] if stored else "",
            "exposure": str(latest.exposure) if latest else "0",
            "equity": str(latest.equity) if latest else None,
            "drawdown": str(drawdown(peaks[bot.id], latest.equity)) if latest else None,
            "consecutive_losses": losing_since_win.get(bot.id, 0),
            "open_orders": sum(1 for o in orders if o.bot_id == bot.id),
        }
    portfolio = last.get(PORTFOLIO)
    state, reason = status.get(ALL_BOTS, ("ACTIVE", ""))
    return {
        "state": state,
        "reason": reason,
        "equity": str(portfolio.equity) if portfolio else None,
        "drawdown": str(drawdown(peaks[PORTFOLIO], portfolio.equity)) if portfolio else None,
        "bots": bots,
    }


def _flows(conn: psycopg.Connection, settings: Settings, now_ns: int) -> list[FlowHealth]:
    """Each flow's heartbeat and consumer lag from its recovery store when it runs beside the API
    (pets.api.recovery); else its heartbeat is the age of the newest row of the table it writes, and
    its lag is unknown (Bytewax keeps input offsets in the store, not in consumer groups)."""
    from pets.api.recovery import consumer_lag, stored_flows

    now = now_ns / 1e9
    out = [
        FlowHealth(
            flow.name,
            None if flow.last_snapshot is None else max(0.0, now - flow.last_snapshot.timestamp()),
            consumer_lag(settings, flow.offsets),
            "recovery store: newest snapshot; lag = input end offsets - snapshot offsets",
        )
        for flow in stored_flows(settings.recovery_dir)
    ]
    stored = {f.name for f in out}
    for flow, table in FLOW_TABLES.items():
        if flow in stored:
            continue
        row = (
            conn.execute(f"SELECT {_ns('max(ts)')} FROM {table}").fetchone() if _exists(conn, table) else None
        )
        age = None if row is None or row[0] is None else max(0.0, (now_ns - row[0]) / 1e9)
        out.append(FlowHealth(flow, age, None, f"newest {table} row (no recovery store here)"))
    return out
