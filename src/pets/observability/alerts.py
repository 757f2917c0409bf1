"""What the alert flow tells the operator, and how often (docs/operations.md).

`AlertRules` turns the trading topics into `Notification`s: a circuit breaker or halt (risk.alert), a
drawdown approaching its limit (pnl.snapshot; the drawdown is `execution.metrics.drawdown_after`), a
major win (one fill of exec.report whose realized P&L, net of its fee and rebate, is above the amount:
the executor's own `Portfolio` books it), the market feed losing continuity or going silent (md.book)
and the daily P&L summary at a configured UTC time. `Notifier` applies the per-type setting
(on / silent / off), the minimum interval per (type, key), lets critical alerts through always, and
hands each message to every channel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from pets.execution.metrics import BREAKER_KINDS, PORTFOLIO, ZERO, drawdown_after
from pets.execution.portfolio import Portfolio
from pets.observability.metrics import ALERTS_FAILED, ALERTS_SENT
from pets.pipelines.alerts.senders import DeliveryError, Sender
from pets.schemas.config import AlertsConfig, AlertType, PetsConfig
from pets.schemas.control import EXECUTOR_HALT_RULE, RiskAlert
from pets.schemas.market_data import Continuity
from pets.schemas.orders import ExecutionReport, PnlSnapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Notification:
    type: AlertType
    key: str  # deduplication: the same (type, key) at most once per min_interval_s
    text: str
    critical: bool = False


def _usd(value: Decimal) -> str:
    return f"${value:,.2f}"


class AlertRules:
    """Reads the topics' messages; returns what deserves a notification."""

    def __init__(self, alerts: AlertsConfig, config: PetsConfig) -> None:
        self.alerts = alerts
        trading = config.system.trading
        self.allocations = {bot.id: bot.capital_allocation * trading.starting_capital for bot in config.bots}
        self.allocations[PORTFOLIO] = trading.starting_capital
        self.portfolio = Portfolio(trading.starting_capital, self.allocations)
        self.peaks: dict[str, Decimal] = {}
        self.latest: dict[str, PnlSnapshot] = {}
        self.day_start: dict[str, Decimal] = {}  # equity at the first snapshot of the UTC day
        self.day = ""
        self.summary_sent = ""  # the UTC date of the last daily summary
        self.last_book_s: float | None = None  # wall time of the last md.book message
        self.stalled = False

    def on_risk_alert(self, alert: RiskAlert) -> list[Notification]:
        if (
            alert.kind not in BREAKER_KINDS or alert.rule == EXECUTOR_HALT_RULE
        ):  # the executor's ack of a halt
            return []
        who = "all bots" if alert.bot_id == "*" else alert.bot_id
        text = f"🚨 {alert.kind.replace('_', ' ')} ({alert.rule}) for {who}: {alert.message}"
        return [
            Notification(
                "circuit_breaker",
                f"{alert.bot_id}:{alert.kind}:{alert.rule}",
                text,
                alert.severity == "critical",
            )
        ]

    def on_report(self, report: ExecutionReport) -> list[Notification]:
        account = self.portfolio.account(report.bot_id)
        before = account.realized
        if self.portfolio.on_report(report) is None:
            return []
        won = account.realized - before - report.fee + report.rebate
        if won <= self.alerts.major_win_usd:
            return []
        trade = f"{report.side} {report.last_qty} @ {report.last_px}"
        text = f"💰 major win: {report.bot_id} made {_usd(won)} on one trade ({trade})"
        return [Notification("major_win", report.report_id, text)]

    def on_pnl(self, snap: PnlSnapshot, now_s: float) -> list[Notification]:
        day = datetime.fromtimestamp(now_s, UTC).date().isoformat()
        if day != self.day:
            self.day, self.day_start = day, {}
        self.day_start.setdefault(snap.bot_id, snap.equity)
        self.latest[snap.bot_id] = snap
        peak, drawdown = drawdown_after(self.peaks.get(snap.bot_id, snap.equity), ZERO, snap.equity)
        self.peaks[snap.bot_id] = peak
        limit = (
            self.alerts.portfolio_drawdown_warning
            if snap.bot_id == PORTFOLIO
            else self.alerts.bot_drawdown_warning
        )
        if drawdown < limit:
            return []
        text = (
            f"📉 drawdown {drawdown:.1%} for {snap.bot_id} (warning at {limit:.0%}): "
            f"equity {_usd(snap.equity)} from a peak of {_usd(peak)}"
        )
        return [Notification("drawdown", snap.bot_id, text)]

    def on_book(self, continuity: Continuity | None, now_s: float) -> list[Notification]:
        """Any md.book message (the feed is alive); a "lost" continuity event is a disconnect or stall
        the WebSocket client saw itself."""
        out: list[Notification] = []
        if self.stalled:
            out.append(Notification("feed", "stall", "✅ market feed flowing again"))
        self.last_book_s, self.stalled = now_s, False
        if continuity is not None and continuity.status == "lost":
            assets = len(continuity.asset_ids)
            text = f"⚠️ market WebSocket lost continuity for {assets} asset(s): {continuity.reason}"
            out.append(Notification("feed", "ws", text))
        return out

    def tick(self, now_s: float) -> list[Notification]:
        out: list[Notification] = []
        if (
            self.last_book_s is not None
            and not self.stalled
            and now_s - self.last_book_s > self.alerts.feed_stall_s
        ):
            self.stalled = True
            text = f"⚠️ market feed stalled: no md.book message for {now_s - self.last_book_s:.0f} s"
            out.append(Notification("feed", "stall", text))
        now = datetime.fromtimestamp(now_s, UTC)
        day = now.date().isoformat()
        if (
            now.strftime("%H:%M") >= self.alerts.daily_summary_utc
            and self.summary_sent != day
            and self.latest
        ):
            self.summary_sent = day
            out.append(Notification("daily_summary", day, self.summary(day)))
        return out

    def summary(self, day: str) -> str:
        """Per bot and the portfolio: P&L (equity - allocation, execution/metrics.py's definition), the
        change since the day's first snapshot, trades and win rate."""
        lines = [f"📊 PETS daily summary {day} (UTC)"]
        for bot_id in sorted(self.latest, key=lambda b: (b == PORTFOLIO, b)):
            snap = self.latest[bot_id]
            pnl = snap.equity - self.allocations.get(bot_id, snap.equity)
            today = snap.equity - self.day_start.get(bot_id, snap.equity)
            closed = snap.wins + snap.losses
            win = f"{snap.wins / closed:.0%}" if closed else "n/a"
            lines.append(
                f"{bot_id}: P&L {_usd(pnl)} (today {_usd(today)}), {snap.trades} trades, win rate {win}"
            )
        return "\n".join(lines)


class Notifier:
    def __init__(
        self, alerts: AlertsConfig, senders: Sequence[Sender], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.alerts = alerts
        self.senders = senders
        self.clock = clock
        self.last_sent: dict[tuple[str, str], float] = {}

    def notify(self, note: Notification) -> bool:
        """True when the notification went out (to the channels that took it)."""
        setting = self.alerts.setting(note.type)
        if setting == "off" and not note.critical:
            return False
        now = self.clock()
        last = self.last_sent.get((note.type, note.key))
        if not note.critical and last is not None and now - last < self.alerts.min_interval_s:
            return False
        self.last_sent[(note.type, note.key)] = now
        silent = setting == "silent" and not note.critical
        for sender in self.senders:
            try:
                sender.send(note.text, silent)
            except DeliveryError as exc:
                ALERTS_FAILED.labels(sender.name, note.type).inc()
                log.error("alert %s not delivered: %s", note.type, exc)
            else:
                ALERTS_SENT.labels(sender.name, note.type).inc()
        return True
