"""What the operator's desk shows at one instant, and the views the control API serves from it.

A `DeskState` is built either by an in-process run (`pets run --api-port`, pets.api.run_desk) or
from the database the flows write (`pets api serve`, pets.api.database); the views below are the one
place its figures are turned into JSON, and every performance figure comes from the project's one
definition of it (pets.execution.metrics: P&L, ROI, win rate, Sharpe on 15-minute equity samples,
max drawdown; the risk engine's snapshot() shape for states, drawdowns and consecutive losses).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import msgspec

from pets.execution.metrics import PORTFOLIO, BotReport, build_report
from pets.risk.zones import zone_for
from pets.schemas.config import PetsConfig
from pets.schemas.control import ALL_BOTS, RiskAlert
from pets.schemas.orders import PnlSnapshot, Position

ZERO: Final = Decimal(0)
NS_PER_S: Final = 1_000_000_000
DAY_NS: Final = 86_400 * NS_PER_S
RECENT: Final = 500  # fills, denials and alerts a state keeps (the API's largest page)


@dataclass(frozen=True, slots=True)
class Fill:
    report_id: str
    ts_ns: int
    bot_id: str
    client_order_id: str
    market: str
    asset_id: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    rebate: Decimal
    liquidity: str | None


@dataclass(frozen=True, slots=True)
class OpenOrder:
    client_order_id: str
    ts_ns: int
    bot_id: str
    market: str
    asset_id: str
    side: str
    price: Decimal
    size: Decimal
    leaves: Decimal


@dataclass(frozen=True, slots=True)
class DenialRow:
    client_order_id: str
    ts_ns: int
    bot_id: str
    market: str
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class FlowHealth:
    name: str
    heartbeat_age_s: float | None  # wall seconds since the flow was last seen working
    consumer_lag: int | None  # input messages not yet taken (None: not measurable here)
    note: str = ""


@dataclass(frozen=True, slots=True)
class MarketLabel:
    question: str
    category: str
    outcomes: Mapping[str, str]  # token -> outcome name


@dataclass(frozen=True, slots=True)
class DeskState:
    source: str  # "run" (pets run --api-port) or "database" (pets api serve)
    simulated: bool  # paper money: the dashboard labels its P&L SIMULATED
    now_ns: int  # the desk's clock: venue time for a run, wall time for the database
    snapshots: Sequence[PnlSnapshot] = ()  # P&L per bot and "portfolio", in time order
    fills: Sequence[Fill] = ()  # the latest RECENT, oldest first
    orders: Sequence[OpenOrder] = ()
    positions: Sequence[Position] = ()  # open (qty != 0)
    opened_ns: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (bot, token) -> opened
    marks: Mapping[str, Decimal] = field(default_factory=dict)  # token -> mid
    markets: Mapping[str, MarketLabel] = field(default_factory=dict)  # condition id -> label
    risk: Mapping[str, Any] = field(default_factory=dict)  # RiskEngine.snapshot() shape
    denials: Sequence[DenialRow] = ()  # the latest RECENT, oldest first
    denial_counts: Sequence[tuple[str, str, int]] = ()  # (bot, rule, count) over the whole run
    alerts: Sequence[RiskAlert] = ()  # oldest first
    trades_today: Mapping[str, int] = field(default_factory=dict)  # bot -> fills since UTC midnight
    latency_ms: Mapping[str, float] = field(default_factory=dict)  # bot -> mean signal -> order ms
    flows: Sequence[FlowHealth] = ()
    problems: Sequence[str] = ()  # why the desk is degraded (services not answering, ...)


# ---------------------------------------------------------------------------------------- helpers


def _num(value: Decimal | None) -> str | None:
    """Money and prices as strings: exact, like the topics' JSON."""
    return None if value is None else str(value)


def _seconds(ts_ns: int) -> float:
    return ts_ns / NS_PER_S


def allocations(config: PetsConfig) -> dict[str, Decimal]:
    capital = config.system.trading.starting_capital
    return {bot.id: bot.capital_allocation * capital for bot in config.bots}


def report(state: DeskState, config: PetsConfig) -> dict[str, BotReport]:
    """The run report (pets.execution.metrics.build_report) of every configured bot and "portfolio"."""
    denials = [(bot, rule) for bot, rule, n in state.denial_counts for _ in range(n)]
    return build_report(
        [bot.id for bot in config.bots],
        allocations(config),
        config.system.trading.starting_capital,
        state.snapshots,
        denials,
        state.alerts,
    )


def _report_json(line: BotReport) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(line)
    return out


def trading_state(state: DeskState) -> str:
    """The contract's "active" | "halted": anything but ACTIVE stops new risk (REDUCING included)."""
    raw = state.risk.get("state", "ACTIVE")
    return "active" if raw == "ACTIVE" else "halted"


def bot_state(state: DeskState, bot_id: str, enabled: bool) -> tuple[str, str]:
    if not enabled:
        return "DISABLED", ""
    risk = state.risk.get("bots", {}).get(bot_id)
    if risk is None:
        return "RUNNING" if state.source == "run" else "UNKNOWN", ""
    return str(risk["state"]), str(risk.get("reason", ""))


# ---------------------------------------------------------------------------------------- views


def health_view(state: DeskState) -> dict[str, Any]:
    return {
        "status": "degraded" if state.problems else "ok",
        "source": state.source,
        "simulated": state.simulated,
        "now": _seconds(state.now_ns),
        "trading_state": trading_state(state),
        "flows": [
            {
                "name": f.name,
                "heartbeat_age_s": f.heartbeat_age_s,
                "consumer_lag": f.consumer_lag,
                "note": f.note,
            }
            for f in state.flows
        ],
        "problems": list(state.problems),
    }


def bots_view(state: DeskState, config: PetsConfig) -> list[dict[str, Any]]:
    lines = report(state, config)
    alloc = allocations(config)
    risk_bots = state.risk.get("bots", {})
    out = []
    for bot in config.bots:
        line = lines[bot.id]
        current, reason = bot_state(state, bot.id, bot.enabled)
        out.append(
            {
                "bot_id": bot.id,
                "name": bot.name,
                "strategy": bot.strategy,
                "strategy_type": str(bot.strategy_type),
                "risk_profile": str(bot.risk_profile),
                "enabled": bot.enabled,
                "state": current,
                "reason": reason,
                "allocation": float(bot.capital_allocation),
                "allocation_usdc": _num(alloc[bot.id]),
                "trades": line.trades,
                "trades_today": state.trades_today.get(bot.id, 0),
                "wins": line.wins,
                "losses": line.losses,
                "win_rate": line.win_rate,
                "pnl": _num(line.pnl),
                "roi": line.roi,
                "sharpe": line.sharpe,
                "max_drawdown": line.max_drawdown,
                "avg_latency_ms": state.latency_ms.get(bot.id),
                "open_orders": int(risk_bots.get(bot.id, {}).get("open_orders", 0)),
                "zone_strategies": list(bot.zone_strategies),
                "categories": list(bot.categories),
                "simulated": state.simulated,
            }
        )
    return out


def positions_view(state: DeskState, config: PetsConfig) -> list[dict[str, Any]]:
    zones = config.zones.zones
    out = []
    for p in state.positions:
        mark = state.marks.get(p.asset_id)
        price = mark if mark is not None else p.avg_price
        # as Portfolio.valuation: a holding without a mark is worth its cost
        unrealized = ZERO if mark is None else p.qty * mark - p.cost
        zone = zone_for(price, zones)
        label = state.markets.get(p.market)
        opened = state.opened_ns.get((p.bot_id, p.asset_id), p.ts_ns)
        out.append(
            {
                "bot_id": p.bot_id,
                "market": p.market,
                "question": label.question if label else "",
                "category": label.category if label else "",
                "asset_id": p.asset_id,
                "side": (label.outcomes.get(p.asset_id, "") if label else "") or "token",
                "size": _num(p.qty),
                "entry": _num(p.avg_price),
                "current_price": _num(mark),
                "pnl": _num(unrealized),
                "realized_pnl": _num(p.realized_pnl),
                "zone": zone.zone if zone else None,
                "zone_name": zone.name if zone else "",
                "duration_s": max(0.0, (state.now_ns - opened) / NS_PER_S),
            }
        )
    return out


def orders_view(state: DeskState, bot_id: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "client_order_id": o.client_order_id,
            "ts": _seconds(o.ts_ns),
            "bot_id": o.bot_id,
            "market": o.market,
            "asset_id": o.asset_id,
            "side": o.side,
            "price": _num(o.price),
            "size": _num(o.size),
            "leaves": _num(o.leaves),
        }
        for o in state.orders
        if bot_id is None or o.bot_id == bot_id
    ]


def fill_json(f: Fill) -> dict[str, Any]:
    return {
        "report_id": f.report_id,
        "ts": _seconds(f.ts_ns),
        "bot_id": f.bot_id,
        "client_order_id": f.client_order_id,
        "market": f.market,
        "asset_id": f.asset_id,
        "side": f.side,
        "qty": _num(f.qty),
        "price": _num(f.price),
        "fee": _num(f.fee),
        "rebate": _num(f.rebate),
        "liquidity": f.liquidity,
    }


def fills_view(state: DeskState, limit: int, bot_id: str | None = None) -> list[dict[str, Any]]:
    """The latest `limit` fills, newest first."""
    chosen = [f for f in state.fills if bot_id is None or f.bot_id == bot_id]
    return [fill_json(f) for f in reversed(chosen[-limit:])] if limit > 0 else []


def pnl_view(
    state: DeskState, config: PetsConfig, resolution_s: int, bot_id: str | None = None
) -> dict[str, Any]:
    """Equity per bot and for the portfolio in buckets of `resolution_s`: open, high, low, close of the
    equity snapshots in each bucket, and the P&L at its close (equity - allocation)."""
    alloc = allocations(config)
    alloc[PORTFOLIO] = config.system.trading.starting_capital
    step = resolution_s * NS_PER_S
    series: dict[str, list[dict[str, Any]]] = {}
    current: dict[str, list[Any]] = {}  # bot -> [bucket, open, high, low, close]

    def close(bot: str) -> None:
        bucket, first, high, low, last = current.pop(bot)
        series.setdefault(bot, []).append(
            {
                "ts": _seconds(bucket),
                "open": _num(first),
                "high": _num(high),
                "low": _num(low),
                "close": _num(last),
                "pnl": _num(last - alloc.get(bot, ZERO)),
            }
        )

    for snap in state.snapshots:
        if bot_id is not None and snap.bot_id not in (bot_id, PORTFOLIO):
            continue
        bucket = snap.ts_ns - snap.ts_ns % step
        open_ = current.get(snap.bot_id)
        if open_ is not None and open_[0] != bucket:
            close(snap.bot_id)
            open_ = None
        if open_ is None:
            current[snap.bot_id] = [bucket, snap.equity, snap.equity, snap.equity, snap.equity]
        else:
            open_[2] = max(open_[2], snap.equity)
            open_[3] = min(open_[3], snap.equity)
            open_[4] = snap.equity
    for bot in list(current):
        close(bot)
    lines = report(state, config)
    return {
        "resolution_s": resolution_s,
        "simulated": state.simulated,
        "series": dict(sorted(series.items())),
        "portfolio": _report_json(lines[PORTFOLIO]),
        "limits": {
            "bot_drawdown": float(config.risk.circuit_breakers.bot_drawdown_halt),
            "portfolio_drawdown": float(config.risk.circuit_breakers.portfolio_drawdown_emergency),
        },
    }


def risk_view(state: DeskState, config: PetsConfig) -> dict[str, Any]:
    breakers = config.risk.circuit_breakers
    zones = config.zones.zones
    by_zone: dict[str, Decimal] = {str(z.zone): ZERO for z in zones}
    by_category: dict[str, Decimal] = {}
    by_bot_zone: dict[str, dict[str, Decimal]] = {}
    for p in state.positions:
        mark = state.marks.get(p.asset_id)
        price = mark if mark is not None else p.avg_price
        zone = zone_for(price, zones)
        key = str(zone.zone) if zone else "none"
        value = abs(p.qty * price)
        by_zone[key] = by_zone.get(key, ZERO) + value
        label = state.markets.get(p.market)
        category = label.category if label and label.category else "unknown"
        by_category[category] = by_category.get(category, ZERO) + value
        cells = by_bot_zone.setdefault(p.bot_id, {})
        cells[key] = cells.get(key, ZERO) + value
    risk_bots = state.risk.get("bots", {})
    bots = []
    for bot in config.bots:
        risk = risk_bots.get(bot.id, {})
        current, reason = bot_state(state, bot.id, bot.enabled)
        limit_losses = bot.risk.consecutive_losses or breakers.consecutive_losses
        drawdown = risk.get("drawdown")
        bots.append(
            {
                "bot_id": bot.id,
                "name": bot.name,
                "state": current,
                "reason": reason,
                "circuit_breaker": "tripped" if current in ("PAUSED", "HALTED") else "ok",
                "consecutive_losses": risk.get("consecutive_losses"),
                "consecutive_losses_limit": limit_losses,
                "consecutive_losses_warning": 2,
                "drawdown": None if drawdown is None else float(drawdown),
                "drawdown_limit": float(bot.risk.drawdown_halt or breakers.bot_drawdown_halt),
                "exposure": risk.get("exposure"),
            }
        )
    drawdown = state.risk.get("drawdown")
    return {
        "trading_state": trading_state(state),
        "portfolio_state": state.risk.get("state", "ACTIVE"),
        "reason": state.risk.get("reason", ""),
        "simulated": state.simulated,
        "drawdown": None if drawdown is None else float(drawdown),
        "drawdown_limit": float(breakers.portfolio_drawdown_emergency),
        "daily_loss_limit": float(config.risk.limits.daily_loss_halt),
        "max_category_exposure": float(config.risk.limits.max_category_exposure),
        "exposure_by_zone": {k: _num(v) for k, v in by_zone.items()},
        "exposure_by_category": {k: _num(v) for k, v in sorted(by_category.items())},
        "exposure_by_bot_zone": {
            bot: {k: _num(v) for k, v in cells.items()} for bot, cells in sorted(by_bot_zone.items())
        },
        "bots": bots,
    }


def alert_json(alert: RiskAlert) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "ts": _seconds(alert.ts_ns),
        "kind": alert.kind,
        "bot_id": alert.bot_id,
        "rule": alert.rule,
        "message": alert.message,
        "severity": alert.severity,
        "until": None if alert.until_ns is None else _seconds(alert.until_ns),
    }


def alerts_view(state: DeskState, limit: int) -> list[dict[str, Any]]:
    return [alert_json(a) for a in reversed(state.alerts[-limit:])] if limit > 0 else []


def denial_json(d: DenialRow) -> dict[str, Any]:
    return {
        "client_order_id": d.client_order_id,
        "ts": _seconds(d.ts_ns),
        "bot_id": d.bot_id,
        "market": d.market,
        "rule": d.rule,
        "reason": d.reason,
    }


# ---------------------------------------------------------------------------------------- events


def events_between(before: DeskState | None, after: DeskState) -> list[dict[str, Any]]:
    """What happened between two states, for the /events WebSocket: new fills, denials, alerts, and
    bot or portfolio state changes (nothing for the first state: that is history, not news)."""
    if before is None:
        return []
    seen_fills = {f.report_id for f in before.fills}
    seen_denials = {(d.client_order_id, d.ts_ns) for d in before.denials}
    seen_alerts = {a.alert_id for a in before.alerts}
    events: list[dict[str, Any]] = []
    events += [{"type": "fill", **fill_json(f)} for f in after.fills if f.report_id not in seen_fills]
    events += [
        {"type": "denial", **denial_json(d)}
        for d in after.denials
        if (d.client_order_id, d.ts_ns) not in seen_denials
    ]
    events += [{"type": "alert", **alert_json(a)} for a in after.alerts if a.alert_id not in seen_alerts]
    events += state_changes(before.risk, after.risk)
    return events


def state_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    if before.get("state") != after.get("state") and "state" in after:
        out.append(
            {
                "type": "bot_state",
                "bot_id": ALL_BOTS,
                "state": after["state"],
                "reason": after.get("reason", ""),
            }
        )
    old = before.get("bots", {})
    for bot_id, now in after.get("bots", {}).items():
        if old.get(bot_id, {}).get("state") != now.get("state"):
            out.append(
                {
                    "type": "bot_state",
                    "bot_id": bot_id,
                    "state": now["state"],
                    "reason": now.get("reason", ""),
                }
            )
    return out


def utc_midnight_ns(ts_ns: int) -> int:
    return ts_ns - ts_ns % DAY_NS
