"""What the dashboard's pages show, computed from the API's JSON (pure: tested without Streamlit)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

# What the Overview cards compare with. The drawdown limit is the risk configuration's (served by the
# API); the others are the desk's reference levels: break-even ROI, a Sharpe of 1, a 50% win rate.
ROI_TARGET: Final = 0.0
SHARPE_TARGET: Final = 1.0
WIN_RATE_TARGET: Final = 0.5
LOSS_WARNING: Final = 2  # consecutive losses shown as a warning (the breaker trips at its limit)


@dataclass(frozen=True, slots=True)
class Card:
    label: str
    value: str
    reference: str  # "target 50%" / "limit 40%"
    ok: bool | None  # None: not measurable yet


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def overview_cards(pnl: dict[str, Any]) -> list[Card]:
    """Total ROI, Sharpe, max drawdown and win rate of the portfolio, each against its target/limit."""
    line = pnl["portfolio"]
    limit = pnl["limits"]["portfolio_drawdown"]
    sharpe = line.get("sharpe")
    trips = line.get("round_trips", 0)
    return [
        Card("Total ROI", _pct(line["roi"]), f"target > {_pct(ROI_TARGET)}", line["roi"] > ROI_TARGET),
        Card(
            "Sharpe",
            "n/a" if sharpe is None else f"{sharpe:.2f}",
            f"target > {SHARPE_TARGET:g} (n/a under 30 samples of 15 min)",
            None if sharpe is None else sharpe > SHARPE_TARGET,
        ),
        Card(
            "Max drawdown", _pct(line["max_drawdown"]), f"limit {_pct(limit)}", line["max_drawdown"] < limit
        ),
        Card(
            "Win rate",
            _pct(line["win_rate"]) if trips else "n/a",
            f"target > {_pct(WIN_RATE_TARGET)}",
            None if not trips else line["win_rate"] > WIN_RATE_TARGET,
        ),
    ]


def pnl_lines(pnl: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (bot, time): the P&L at the bucket's close, for a line per bot and the portfolio."""
    return [
        {"bot": bot, "time": point["ts"] * 1000, "pnl": float(point["pnl"])}  # ms: Vega-Lite's time
        for bot, points in pnl["series"].items()
        for point in points
    ]


def candles(pnl: dict[str, Any], bot: str) -> list[dict[str, Any]]:
    """Equity candlesticks (open, high, low, close per bucket) of one bot or the portfolio."""
    return [
        {"time": point["ts"] * 1000, **{k: float(point[k]) for k in ("open", "high", "low", "close")}}
        for point in pnl["series"].get(bot, [])
    ]


def heatmap(risk: dict[str, Any]) -> list[dict[str, Any]]:
    """Exposure per bot and zone (every zone present for every bot with exposure)."""
    zones = sorted(risk["exposure_by_zone"], key=lambda z: (z == "none", z))
    return [
        {"bot": bot, "zone": zone, "exposure": float(cells.get(zone, 0))}
        for bot, cells in risk["exposure_by_bot_zone"].items()
        for zone in zones
    ]


def loss_warnings(risk: dict[str, Any]) -> list[str]:
    return [
        f"{b['bot_id']}: {b['consecutive_losses']} consecutive losses "
        f"(breaker at {b['consecutive_losses_limit']})"
        for b in risk["bots"]
        if (b["consecutive_losses"] or 0) >= LOSS_WARNING
    ]


def gauges(risk: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(who, drawdown, limit) for the portfolio and every bot with a measured drawdown."""
    out = [("portfolio", risk["drawdown"] or 0.0, risk["drawdown_limit"])]
    out += [
        (b["bot_id"], b["drawdown"], b["drawdown_limit"]) for b in risk["bots"] if b["drawdown"] is not None
    ]
    return out
