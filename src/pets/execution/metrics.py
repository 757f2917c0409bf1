"""Performance per bot and for the portfolio, from P&L snapshots, denials and risk alerts.

- trades: fills (each partial or full execution is one trade, as on the venue's trade tape);
  round_trips / wins / losses: holdings in one event from open to flat (portfolio.py); win_rate =
  wins / round_trips (0 when none closed).
- pnl: equity - allocation at the last snapshot (net of fees, with rebates; open positions at mid);
  roi = pnl / allocation.
- sharpe: mean / stdev of the returns between consecutive snapshots (equity change / allocation),
  annualized by sqrt(snapshots per 365 days); 0 when the equity never moved. A statistic, so float.
- max_drawdown: the largest fall from an equity peak as a fraction of that peak (snapshots).
- denials_by_reason: denied intents per risk rule code; breaker_events: circuit-breaker and halt
  alerts naming the bot (portfolio-wide ones are counted for "portfolio").
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from itertools import pairwise
from typing import Final

import msgspec

from pets.schemas.control import RiskAlert
from pets.schemas.orders import PnlSnapshot

ZERO: Final = Decimal(0)
YEAR_NS: Final = 365 * 86_400 * 1_000_000_000
BREAKER_KINDS: Final = frozenset(
    {"circuit_breaker", "daily_loss_halt", "bot_drawdown_halt", "emergency_halt"}
)
PORTFOLIO: Final = "portfolio"


class BotReport(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the report (`pets run --json` prints one per bot id)."""

    trades: int
    round_trips: int
    wins: int
    losses: int
    win_rate: float
    pnl: Decimal
    roi: float
    sharpe: float
    max_drawdown: float
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    rebates: Decimal
    equity: Decimal
    allocation: Decimal
    denials_by_reason: dict[str, int]
    breaker_events: int


def sharpe(equity: Sequence[Decimal], capital: Decimal, ts_ns: Sequence[int]) -> float:
    """Annualized Sharpe ratio of the per-snapshot returns (equity change / capital)."""
    if len(equity) < 3 or capital <= 0:
        return 0.0
    returns = [float((b - a) / capital) for a, b in pairwise(equity)]
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if variance <= 0:
        return 0.0
    interval = (ts_ns[-1] - ts_ns[0]) / (len(ts_ns) - 1)
    if interval <= 0:
        return 0.0
    return mean / math.sqrt(variance) * math.sqrt(YEAR_NS / interval)


def max_drawdown(equity: Iterable[Decimal]) -> float:
    peak: Decimal | None = None
    worst = ZERO
    for value in equity:
        if peak is None or value > peak:
            peak = value
        if peak > 0:
            worst = max(worst, (peak - value) / peak)
    return float(worst)


def build_report(
    bot_ids: Iterable[str],
    allocations: Mapping[str, Decimal],
    starting_capital: Decimal,
    snapshots: Iterable[PnlSnapshot],
    denials: Iterable[tuple[str, str]],
    alerts: Iterable[RiskAlert],
) -> dict[str, BotReport]:
    """The report of every bot in `bot_ids` (plus "portfolio"), from the run's P&L snapshots (in time
    order), denials as (bot_id, rule) and risk alerts."""
    series: dict[str, list[PnlSnapshot]] = {}
    for snap in snapshots:
        series.setdefault(snap.bot_id, []).append(snap)
    denied: dict[str, Counter[str]] = {}
    for bot_id, rule in denials:
        denied.setdefault(bot_id, Counter())[rule] += 1
        denied.setdefault(PORTFOLIO, Counter())[rule] += 1
    breakers: Counter[str] = Counter()
    for alert in alerts:
        if alert.kind in BREAKER_KINDS:
            breakers[PORTFOLIO if alert.bot_id == "*" else alert.bot_id] += 1
    report: dict[str, BotReport] = {}
    for bot_id in [*bot_ids, PORTFOLIO]:
        capital = starting_capital if bot_id == PORTFOLIO else allocations.get(bot_id, ZERO)
        snaps = series.get(bot_id, [])
        last = snaps[-1] if snaps else None
        equities = [s.equity for s in snaps]
        trips = (last.wins + last.losses) if last else 0
        pnl = (last.equity - capital) if last else ZERO
        report[bot_id] = BotReport(
            trades=last.trades if last else 0,
            round_trips=trips,
            wins=last.wins if last else 0,
            losses=last.losses if last else 0,
            win_rate=round(last.wins / trips, 4) if last and trips else 0.0,
            pnl=pnl,
            roi=round(float(pnl / capital), 6) if capital > 0 else 0.0,
            sharpe=round(sharpe(equities, capital, [s.ts_ns for s in snaps]), 4),
            max_drawdown=round(max_drawdown(equities), 6),
            realized_pnl=last.realized_pnl if last else ZERO,
            unrealized_pnl=last.unrealized_pnl if last else ZERO,
            fees=last.fees if last else ZERO,
            rebates=last.rebates if last else ZERO,
            equity=last.equity if last else capital,
            allocation=capital,
            denials_by_reason=dict(sorted(denied.get(bot_id, Counter()).items())),
            breaker_events=breakers.get(bot_id, 0),
        )
    return report


def format_report(report: Mapping[str, BotReport], names: Mapping[str, str] | None = None) -> str:
    """The report as a fixed-width table plus the denials and breaker events, for people."""
    names = names or {}
    head = (
        f"{'bot':<10} {'strategy':<24} {'trades':>6} {'trips':>5} {'win%':>6} {'pnl':>11} {'roi%':>7} "
        f"{'sharpe':>8} {'maxDD%':>7} {'fees':>9} {'rebates':>8} {'denied':>6}"
    )
    lines = [head, "-" * len(head)]
    for bot_id, r in report.items():
        lines.append(
            f"{bot_id:<10} {names.get(bot_id, '')[:24]:<24} {r.trades:>6} {r.round_trips:>5} "
            f"{r.win_rate * 100:>6.1f} {r.pnl:>11.2f} {r.roi * 100:>7.2f} {r.sharpe:>8.2f} "
            f"{r.max_drawdown * 100:>7.2f} {r.fees:>9.2f} {r.rebates:>8.2f} "
            f"{sum(r.denials_by_reason.values()):>6}"
        )
    denial_lines = [
        f"  {bot_id}: " + ", ".join(f"{rule} {n}" for rule, n in r.denials_by_reason.items())
        for bot_id, r in report.items()
        if r.denials_by_reason and bot_id != PORTFOLIO
    ]
    if denial_lines:
        lines += ["", "denials by reason:", *denial_lines]
    breaker_lines = [f"  {bot_id}: {r.breaker_events}" for bot_id, r in report.items() if r.breaker_events]
    if breaker_lines:
        lines += ["", "circuit-breaker / halt events:", *breaker_lines]
    return "\n".join(lines)
