from __future__ import annotations

import pickle
from decimal import Decimal as D

from risk_factories import T0_MS, tob

from pets.risk import circuit_breakers as cb
from pets.risk.duplicates import RecentIds, check_duplicate
from pets.risk.rate_limit import SECOND_NS, RateWindow, check_rate
from pets.risk.staleness import check_book
from pets.risk.state import (
    BotState,
    Status,
    TradingState,
    bot_status_after,
    check_bot,
    check_portfolio,
    portfolio_status_after,
)
from pets.schemas.control import ControlCommand


def test_rate_limit_sliding_second_and_minute() -> None:
    window = RateWindow()
    t = 10 * SECOND_NS
    for i in range(5):
        assert check_rate(window, t + i, 5, 120) is None
        window.record(t + i)
    denial = check_rate(window, t + 10, 5, 120)
    assert denial is not None and denial.rule == "rate_limit" and "last second" in denial.reason
    assert check_rate(window, t + SECOND_NS + 4, 5, 120) is None  # the first five left the window
    window = pickle.loads(pickle.dumps(window))
    for i in range(120):
        window.record(t + i * (SECOND_NS // 2))
    minute = check_rate(window, t + 120 * (SECOND_NS // 2), 1000, 120)
    assert minute is not None and "last minute" in minute.reason


def test_duplicates_are_remembered_for_the_window() -> None:
    ids = RecentIds(window_ns=100)
    ids.add("a", 0)
    assert check_duplicate("a", ids) is not None
    assert check_duplicate("b", ids) is None
    ids.add("b", 100)  # "a" is now at the edge of the window and forgotten
    assert "a" not in ids and "b" in ids
    restored = pickle.loads(pickle.dumps(ids))
    assert "b" in restored and restored.window_ns == 100


def test_stale_book_rules() -> None:
    assert check_book("yes1", None, T0_MS, 5000).reason == "no top of book for yes1 yet"  # type: ignore[union-attr]
    stale = check_book("yes1", tob(stale=True), T0_MS, 5000)
    assert stale is not None and "continuity lost" in stale.reason
    fresh = tob(ts_ms=T0_MS + 5000)
    assert check_book("yes1", fresh, T0_MS, 5000) is None  # priced 5 s before the current book: at the limit
    old = check_book("yes1", fresh, T0_MS - 1, 5000)
    assert old is not None and old.reason == "priced off a book 5001 ms older than the current one (max 5000)"
    # a quiet market is not stale: the book is old but it is the newest one
    assert check_book("yes1", tob(ts_ms=T0_MS), T0_MS + 600_000, 5000) is None


def test_breaker_conditions() -> None:
    assert cb.consecutive_losses_tripped(2, 3) is None
    assert cb.consecutive_losses_tripped(3, 3) == "3 consecutive losing positions (limit 3)"
    assert cb.drawdown(D(100), D(75)) == D("0.25")
    assert cb.drawdown(D(100), D(120)) == 0
    assert cb.drawdown_tripped("bot_01", D(100), D("75.01"), D("0.25")) is None
    assert cb.drawdown_tripped("bot_01", D(100), D(75), D("0.25")) is not None
    assert cb.daily_loss_tripped(D(10_000), D("9500.01"), D("0.05")) is None
    assert cb.daily_loss_tripped(D(10_000), D(9500), D("0.05")) is not None
    assert cb.bot_daily_loss_tripped("bot_08", D(0), D(-50), D(50)) is not None
    assert cb.bot_daily_loss_tripped("bot_08", D(0), D(-50), None) is None
    day = cb.DAY_NS
    assert cb.next_utc_midnight_ns(3 * day) == 4 * day
    assert cb.next_utc_midnight_ns(4 * day - 1) == 4 * day


def cmd(command: str, bot_id: str = "bot_01", until_ns: int | None = None) -> ControlCommand:
    return ControlCommand(command_id="c", command=command, bot_id=bot_id, ts_ns=1, until_ns=until_ns)  # type: ignore[arg-type]


def test_bot_state_transitions() -> None:
    running = Status(BotState.RUNNING)
    paused = bot_status_after(running, cmd("pause", until_ns=99))
    assert paused.state == BotState.PAUSED and paused.until_ns == 99
    assert paused.expired(99) and not paused.expired(98)
    stopped = bot_status_after(paused, cmd("stop"))
    assert stopped.state == BotState.STOPPED
    assert bot_status_after(stopped, cmd("resume")).state == BotState.STOPPED  # a stopped bot needs `start`
    assert bot_status_after(stopped, cmd("start")).state == BotState.RUNNING
    assert bot_status_after(running, cmd("halt")).state == BotState.HALTED
    assert bot_status_after(Status(BotState.HALTED), cmd("resume")).state == BotState.RUNNING


def test_state_checks_allow_reducing_orders_except_when_stopped_or_halted() -> None:
    assert check_bot("b", Status(BotState.PAUSED), reducing=True) is None
    assert check_bot("b", Status(BotState.PAUSED), reducing=False).rule == "bot_paused"  # type: ignore[union-attr]
    assert check_bot("b", Status(BotState.HALTED), reducing=False).rule == "bot_halted"  # type: ignore[union-attr]
    assert check_bot("b", Status(BotState.STOPPED), reducing=True).rule == "bot_stopped"  # type: ignore[union-attr]
    reducing = Status(TradingState.REDUCING, "daily loss")
    assert check_portfolio(reducing, reducing=True) is None
    assert check_portfolio(reducing, reducing=False).rule == "halted"  # type: ignore[union-attr]
    halted = portfolio_status_after(Status(TradingState.ACTIVE), cmd("halt", "*"))
    assert check_portfolio(halted, reducing=True).rule == "halted"  # type: ignore[union-attr]
    resumed = portfolio_status_after(halted, cmd("resume_trading", "*"))
    assert resumed.state == TradingState.ACTIVE
