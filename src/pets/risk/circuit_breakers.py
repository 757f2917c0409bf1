"""Circuit-breaker conditions, each a pure function returning the reason it tripped (or None)."""

from __future__ import annotations

from decimal import Decimal

DAY_NS = 86_400 * 1_000_000_000


def consecutive_losses_tripped(losses: int, limit: int) -> str | None:
    return f"{losses} consecutive losing positions (limit {limit})" if losses >= limit else None


def drawdown(peak: Decimal, equity: Decimal) -> Decimal:
    """Fall from the equity peak as a fraction of the peak (0 at or above the peak)."""
    return (peak - equity) / peak if peak > 0 and equity < peak else Decimal(0)


def drawdown_tripped(who: str, peak: Decimal, equity: Decimal, limit: Decimal) -> str | None:
    dd = drawdown(peak, equity)
    if dd >= limit:
        return f"{who} drawdown {dd:.2%} from peak {peak:.2f} to {equity:.2f} (limit {limit:.0%})"
    return None


def daily_loss_tripped(day_start_equity: Decimal, equity: Decimal, limit: Decimal) -> str | None:
    """Portfolio loss since the start of the UTC day, as a fraction of that day's opening equity."""
    if day_start_equity <= 0:
        return None
    loss = (day_start_equity - equity) / day_start_equity
    if loss >= limit:
        return f"daily loss {loss:.2%} ({day_start_equity - equity:.2f}) reached the {limit:.0%} limit"
    return None


def bot_daily_loss_tripped(
    bot_id: str, day_start_pnl: Decimal, pnl: Decimal, max_usdc: Decimal | None
) -> str | None:
    """A bot's own daily loss limit (risk.max_daily_loss_usdc) in pUSD."""
    if max_usdc is None:
        return None
    loss = day_start_pnl - pnl
    return f"{bot_id} lost {loss:.2f} today (limit {max_usdc})" if loss >= max_usdc else None


def utc_day(now_ns: int) -> int:
    return now_ns // DAY_NS


def next_utc_midnight_ns(now_ns: int) -> int:
    return (utc_day(now_ns) + 1) * DAY_NS
