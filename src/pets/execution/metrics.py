"""Performance per bot and for the portfolio: the one definition of every figure the run report,
`pets report` and Dagster's daily report print.

- trades: fills (each partial or full execution is one trade, as on the venue's trade tape);
  round_trips / wins / losses: holdings in one event from open to flat (portfolio.py); win_rate =
  wins / round_trips (0 when none closed).
- pnl: equity - allocation at the last snapshot (net of fees, with rebates; open positions at mid);
  roi = pnl / allocation.
- sharpe / sortino: of the equity sampled every SAMPLE_INTERVAL_NS (15 minutes: the last snapshot at or
  before each sample time), returns between consecutive samples (equity / previous equity - 1),
  annualised by sqrt(intervals per 365-day year, the venue trades every day); sortino divides by the
  downside deviation. None (n/a) with fewer than MIN_INTERVALS (30) intervals, flat equity or, for
  sortino, no losing interval: a short run leads with P&L, edges, fees and markouts instead.
- max_drawdown: the largest fall from an equity peak as a fraction of that peak (`drawdown_after`).
- edge_quoted: what the fills had against the token's mid when their order was placed, sum of
  qty x (mid - price) for a buy, qty x (price - mid) for a sell; edge_captured: what trading kept of
  it, the P&L before fees and rebates (pnl + fees - rebates). markouts: each fill marked to the mid
  1 s / 10 s / 60 s later, summed (`Markouts`; fills whose horizon the run did not reach are not
  counted). Computed by the loop that sees the books (`pets run`); none in `pets report`.
- denials_by_reason: denied intents per risk rule code; breaker_events: circuit-breaker and halt
  alerts naming the bot (portfolio-wide ones are counted for "portfolio").
- the "portfolio" line: trades, P&L, fees, rebates, edges, markouts and counts are the sums of the
  bots' lines; its Sharpe, Sortino and drawdown are those of the portfolio's own equity.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from typing import Final

import msgspec

from pets.risk.circuit_breakers import drawdown
from pets.schemas.control import RiskAlert
from pets.schemas.orders import ExecutionReport, PnlSnapshot

ZERO: Final = Decimal(0)
NS_PER_S: Final = 1_000_000_000
YEAR_NS: Final = 365 * 86_400 * NS_PER_S
SAMPLE_INTERVAL_NS: Final = 15 * 60 * NS_PER_S
MIN_INTERVALS: Final = 30
MARKOUT_HORIZONS_MS: Final = (1_000, 10_000, 60_000)
MARKOUT_NAMES: Final = ("1s", "10s", "60s")
BREAKER_KINDS: Final = frozenset(
    {"circuit_breaker", "daily_loss_halt", "bot_drawdown_halt", "emergency_halt"}
)
PORTFOLIO: Final = "portfolio"


class BotReport(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the report (`pets run --json` prints one per bot id, and "portfolio")."""

    trades: int
    round_trips: int
    wins: int
    losses: int
    win_rate: float
    pnl: Decimal
    roi: float
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    rebates: Decimal
    edge_quoted: Decimal
    edge_captured: Decimal
    markouts: dict[str, Decimal]
    equity: Decimal
    allocation: Decimal
    denials_by_reason: dict[str, int]
    breaker_events: int
    # `pets run`: what the bot's share of the news forecasts cost (0 with the baseline forecaster), and
    # its trades (fills) by the forecaster (model_version) of the signal that caused their order
    llm_cost_usd: Decimal = ZERO
    forecasters: dict[str, int] = msgspec.field(default_factory=dict)


# ---------------------------------------------------------------------------------------- equity curves


def drawdown_after(peak: Decimal, worst: Decimal, equity: Decimal) -> tuple[Decimal, Decimal]:
    """One more point of an equity curve: (running peak, largest fall from a peak so far as a fraction
    of that peak)."""
    if equity >= peak:
        return equity, worst
    return peak, max(worst, drawdown(peak, equity))


def max_drawdown(equity: Iterable[Decimal]) -> Decimal:
    """The largest fall from a peak of the curve, as a fraction of that peak (0 for a rising curve)."""
    points = iter(equity)
    peak = next(points, None)
    worst = ZERO
    if peak is None:
        return worst
    for value in points:
        peak, worst = drawdown_after(peak, worst, value)
    return worst


def sample_equity(
    ts_ns: Sequence[int], equity: Sequence[Decimal], interval_ns: int = SAMPLE_INTERVAL_NS
) -> list[Decimal]:
    """The equity at the first time, then every `interval_ns` up to the last time: at each sample
    time the latest value at or before it (the points in time order)."""
    if not ts_ns:
        return []
    samples: list[Decimal] = []
    at, i, last = ts_ns[0], 0, len(ts_ns) - 1
    while at <= ts_ns[-1]:
        while i < last and ts_ns[i + 1] <= at:
            i += 1
        samples.append(equity[i])
        at += interval_ns
    return samples


def sharpe_sortino(
    samples: Sequence[Decimal], interval_ns: int = SAMPLE_INTERVAL_NS
) -> tuple[float | None, float | None]:
    """Annualised (Sharpe, Sortino) of the returns between consecutive equity samples; None where
    undefined: fewer than MIN_INTERVALS returns, no dispersion, (Sortino) no losing interval."""
    returns = [float(b / a - 1) for a, b in pairwise(samples) if a > 0]
    if len(returns) < MIN_INTERVALS:
        return None, None
    n = len(returns)
    mean = sum(returns) / n
    stdev = math.sqrt(sum((r - mean) ** 2 for r in returns) / (n - 1))
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / n)
    per_year = math.sqrt(YEAR_NS / interval_ns)
    sharpe = mean / stdev * per_year if stdev > 0 else None
    sortino = mean / downside * per_year if downside > 0 else None
    return sharpe, sortino


# ---------------------------------------------------------------------------------------- fills


@dataclass(slots=True)
class FillQuality:
    """One bot's fills against the mid: when their orders were placed (edge quoted) and after each
    markout horizon."""

    edge_quoted: Decimal = ZERO
    markouts: list[Decimal] = field(default_factory=lambda: [ZERO] * len(MARKOUT_HORIZONS_MS))


class Markouts:
    """Each fill against the token's mid when its order was placed (edge quoted) and marked to the mid
    1 s / 10 s / 60 s after the fill (venue time).

    The mid at a horizon is the one in force then: the latest mid at or before it. A horizon is
    settled by the first mid update at or after it, so the caller feeds `on_mid` only for tokens in
    `pending` (a dictionary lookup per top of book)."""

    def __init__(self) -> None:
        self.bots: dict[str, FillQuality] = {}
        self.placed_mid: dict[str, Decimal] = {}  # open order -> the mid when it was placed
        # token -> heap of (due ms, sequence, horizon index, bot, signed qty, price)
        self.pending: dict[str, list[tuple[int, int, int, str, Decimal, Decimal]]] = {}
        self._sequence = 0

    def on_order(self, client_order_id: str, mid: Decimal | None) -> None:
        if mid is not None:
            self.placed_mid[client_order_id] = mid

    def on_report(self, report: ExecutionReport, now_ms: int, mid: Decimal | None) -> None:
        """A report applied once; `mid` is the token's mid now."""
        placed = self.placed_mid.pop(report.client_order_id, None) if report.final else None
        if report.last_qty <= 0:
            return
        if placed is None:
            placed = self.placed_mid.get(report.client_order_id)
        px = report.last_px if report.last_px is not None else report.order_price
        signed = report.last_qty if report.side == "BUY" else -report.last_qty
        quality = self.bots.get(report.bot_id)
        if quality is None:
            quality = self.bots[report.bot_id] = FillQuality()
        if placed is not None:
            quality.edge_quoted += signed * (placed - px)
        if mid is None:
            return  # nothing to mark against yet
        heap = self.pending.setdefault(report.asset_id, [])
        for index, horizon in enumerate(MARKOUT_HORIZONS_MS):
            self._sequence += 1
            heapq.heappush(heap, (now_ms + horizon, self._sequence, index, report.bot_id, signed, px))

    def on_mid(self, asset_id: str, ts_ms: int, previous: Decimal | None, mid: Decimal) -> None:
        """The token's mid moves from `previous` to `mid` at `ts_ms`: horizons due before `ts_ms` were
        still at `previous`, one due exactly then is at `mid`."""
        heap = self.pending.get(asset_id)
        while heap and heap[0][0] <= ts_ms:
            due, _, index, bot_id, signed, px = heapq.heappop(heap)
            at = mid if due == ts_ms or previous is None else previous
            self.bots[bot_id].markouts[index] += signed * (at - px)
        if heap is not None and not heap:
            del self.pending[asset_id]


# ---------------------------------------------------------------------------------------- the report


def build_report(
    bot_ids: Iterable[str],
    allocations: Mapping[str, Decimal],
    starting_capital: Decimal,
    snapshots: Iterable[PnlSnapshot],
    denials: Iterable[tuple[str, str]],
    alerts: Iterable[RiskAlert],
    fills: Mapping[str, FillQuality] | None = None,
) -> dict[str, BotReport]:
    """The report of every bot in `bot_ids` (plus "portfolio"), from the run's P&L snapshots (in time
    order), denials as (bot_id, rule), risk alerts and, when the books were seen, the fills' quality."""
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
    fills = fills or {}
    report: dict[str, BotReport] = {}
    for bot_id in bot_ids:
        capital = allocations.get(bot_id, ZERO)
        snaps = series.get(bot_id, [])
        last = snaps[-1] if snaps else None
        quality = fills.get(bot_id)
        fees = last.fees if last else ZERO
        rebates = last.rebates if last else ZERO
        pnl = (last.equity - capital) if last else ZERO
        report[bot_id] = _line(
            snaps, capital, denied.get(bot_id, Counter()), breakers.get(bot_id, 0),
            trades=last.trades if last else 0, wins=last.wins if last else 0,
            losses=last.losses if last else 0, pnl=pnl,
            realized=last.realized_pnl if last else ZERO, unrealized=last.unrealized_pnl if last else ZERO,
            fees=fees, rebates=rebates, edge_quoted=quality.edge_quoted if quality else ZERO,
            edge_captured=pnl + fees - rebates,
            markouts=dict(zip(MARKOUT_NAMES, quality.markouts, strict=True)) if quality else {},
        )  # fmt: skip
    lines = list(report.values())
    marked = [line.markouts for line in lines if line.markouts]
    report[PORTFOLIO] = _line(
        series.get(PORTFOLIO, []), starting_capital, denied.get(PORTFOLIO, Counter()),
        breakers.get(PORTFOLIO, 0),
        trades=sum(line.trades for line in lines), wins=sum(line.wins for line in lines),
        losses=sum(line.losses for line in lines), pnl=_sum(line.pnl for line in lines),
        realized=_sum(line.realized_pnl for line in lines),
        unrealized=_sum(line.unrealized_pnl for line in lines), fees=_sum(line.fees for line in lines),
        rebates=_sum(line.rebates for line in lines), edge_quoted=_sum(line.edge_quoted for line in lines),
        edge_captured=_sum(line.edge_captured for line in lines),
        markouts={name: _sum(m[name] for m in marked) for name in MARKOUT_NAMES} if marked else {},
    )  # fmt: skip
    return report


def with_forecasts(
    report: Mapping[str, BotReport],
    forecaster: Mapping[str, str],
    fills: Iterable[tuple[str, str]],
    llm_cost: Mapping[str, Decimal],
) -> dict[str, BotReport]:
    """`report` with each bot's LLM cost and its fills counted by the forecaster (model_version) of
    the signal that caused their order: `forecaster` maps client order ids to it, `fills` are
    (bot id, client order id). The portfolio line has every bot's."""
    used = Counter((bot_id, forecaster[order]) for bot_id, order in fills if order in forecaster)
    out: dict[str, BotReport] = {}
    for bot_id, line in report.items():
        whole = bot_id == PORTFOLIO
        by_name: Counter[str] = Counter()
        for (bot, name), n in used.items():
            if whole or bot == bot_id:
                by_name[name] += n
        cost = _sum(llm_cost.values()) if whole else llm_cost.get(bot_id, ZERO)
        by_forecaster = dict(sorted(by_name.items()))
        out[bot_id] = msgspec.structs.replace(line, llm_cost_usd=cost, forecasters=by_forecaster)
    return out


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, ZERO)


def _line(
    snaps: Sequence[PnlSnapshot], capital: Decimal, denied: Counter[str], breaker_events: int, *,
    trades: int, wins: int, losses: int, pnl: Decimal, realized: Decimal, unrealized: Decimal,
    fees: Decimal, rebates: Decimal, edge_quoted: Decimal, edge_captured: Decimal,
    markouts: dict[str, Decimal],
) -> BotReport:  # fmt: skip
    equities = [s.equity for s in snaps]
    sharpe, sortino = sharpe_sortino(sample_equity([s.ts_ns for s in snaps], equities))
    trips = wins + losses
    return BotReport(
        trades=trades,
        round_trips=trips,
        wins=wins,
        losses=losses,
        win_rate=round(wins / trips, 4) if trips else 0.0,
        pnl=pnl,
        roi=round(float(pnl / capital), 6) if capital > 0 else 0.0,
        sharpe=None if sharpe is None else round(sharpe, 4),
        sortino=None if sortino is None else round(sortino, 4),
        max_drawdown=round(float(max_drawdown(equities)), 6),
        realized_pnl=realized,
        unrealized_pnl=unrealized,
        fees=fees,
        rebates=rebates,
        edge_quoted=edge_quoted,
        edge_captured=edge_captured,
        markouts=markouts,
        equity=capital + pnl,
        allocation=capital,
        denials_by_reason=dict(sorted(denied.items())),
        breaker_events=breaker_events,
    )


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def format_report(report: Mapping[str, BotReport], names: Mapping[str, str] | None = None) -> str:
    """The report as a fixed-width table plus the denials and breaker events, for people. It leads
    with P&L, edges, fees and markouts; Sharpe and Sortino read n/a on a run too short for them."""
    names = names or {}
    marks = " ".join(f"{'mo' + name:>8}" for name in MARKOUT_NAMES)
    head = (
        f"{'bot':<10} {'strategy':<24} {'pnl':>10} {'quoted':>9} {'captured':>9} {'fees':>8} "
        f"{'rebates':>8} {marks} {'trades':>6} {'trips':>5} {'win%':>6} {'roi%':>7} {'sharpe':>7} "
        f"{'sortino':>7} {'maxDD%':>7} {'denied':>6}"
    )
    lines = [head, "-" * len(head)]
    for bot_id, r in report.items():
        markouts = " ".join(
            f"{r.markouts[name]:>8.2f}" if name in r.markouts else f"{'-':>8}" for name in MARKOUT_NAMES
        )
        lines.append(
            f"{bot_id:<10} {names.get(bot_id, '')[:24]:<24} {r.pnl:>10.2f} {r.edge_quoted:>9.2f} "
            f"{r.edge_captured:>9.2f} {r.fees:>8.2f} {r.rebates:>8.2f} {markouts} {r.trades:>6} "
            f"{r.round_trips:>5} {r.win_rate * 100:>6.1f} {r.roi * 100:>7.2f} {_ratio(r.sharpe):>7} "
            f"{_ratio(r.sortino):>7} {r.max_drawdown * 100:>7.2f} {sum(r.denials_by_reason.values()):>6}"
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
    forecast_lines = [
        f"  {bot_id}: LLM ${r.llm_cost_usd:.4f}; trades "
        + (", ".join(f"{name} {n}" for name, n in r.forecasters.items()) or "none")
        for bot_id, r in report.items()
        if (r.forecasters or r.llm_cost_usd) and bot_id != PORTFOLIO
    ]
    if forecast_lines:
        lines += ["", "forecasts (LLM cost; trades by the forecaster that caused them):", *forecast_lines]
    return "\n".join(lines)
