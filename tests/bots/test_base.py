"""The Bot base: operator commands follow the risk engine's state machine; bot-wide refusals back off."""

from __future__ import annotations

from decimal import Decimal

from bot_factories import T0, VENUE, bot_config, market, tob

from pets.bots.market_rebalancing_arb import MarketRebalancingArb
from pets.schemas.control import ControlCommand
from pets.schemas.orders import OrderDenied


def cmd(command: str, bot_id: str = "bot_01", until_ns: int | None = None) -> ControlCommand:
    return ControlCommand(command_id=command, command=command, bot_id=bot_id, ts_ns=0, until_ns=until_ns)  # type: ignore[arg-type]


def arb(bot: MarketRebalancingArb, ts: int) -> int:
    """How many intents an arbitrage book produces now."""
    out = bot.on_top_of_book(tob("yes1", "m1", "0.44", "0.45", ts_ms=ts))
    return len(out + bot.on_top_of_book(tob("no1", "m1", "0.49", f"0.{50 - ts % 10}", ts_ms=ts)))


def new_bot() -> MarketRebalancingArb:
    bot = MarketRebalancingArb(bot_config("bot_01"), VENUE)
    bot.on_market(market())
    return bot


def test_resume_trading_does_not_restart_a_stopped_bot() -> None:
    bot = new_bot()
    bot.on_control(cmd("stop"))
    bot.on_control(cmd("halt", "*"))
    bot.on_control(cmd("resume_trading", "*"))
    assert not bot.operating and arb(bot, T0) == 0
    bot.on_control(cmd("resume"))  # a stopped bot needs `start`, as in the risk engine
    assert not bot.operating
    bot.on_control(cmd("start"))
    assert arb(bot, T0 + 1) == 2


def test_halt_of_the_portfolio_stops_every_bot_until_resume_trading() -> None:
    bot = new_bot()
    bot.on_control(cmd("halt", "*"))
    assert arb(bot, T0) == 0
    bot.on_control(cmd("resume_trading", "*"))
    assert arb(bot, T0 + 1) == 2


def test_a_timed_pause_ends_by_itself() -> None:
    bot = new_bot()
    bot.on_control(cmd("pause", until_ns=(T0 + 1000) * 1_000_000))
    assert arb(bot, T0 + 999) == 0
    assert arb(bot, T0 + 1001) == 2


def test_commands_for_other_bots_are_ignored() -> None:
    bot = new_bot()
    bot.on_control(cmd("stop", "bot_05"))
    assert bot.operating


def test_a_bot_wide_refusal_makes_the_bot_hold_off() -> None:
    bot = new_bot()
    bot.on_top_of_book(tob("yes1", "m1", "0.44", "0.45"))
    legs = bot.on_top_of_book(tob("no1", "m1", "0.49", "0.50"))
    for leg in legs:
        bot.on_order_denied(OrderDenied(intent=leg, rule="bot_paused", reason="paused", denied_ns=0))
    assert not bot.active and bot.operating
    assert arb(bot, T0 + 59_999) == 0  # 60 s
    assert arb(bot, T0 + 60_001) == 2


def test_a_bot_halted_by_risk_holds_still_until_an_operator_resumes_it() -> None:
    """Risk halts a bot at its drawdown limit and lifts the halt on `resume`/`start` only: the bot
    follows instead of re-proposing every minute (1,379 refusals over the shared recordings)."""
    bot = new_bot()
    bot.on_top_of_book(tob("yes1", "m1", "0.44", "0.45"))
    legs = bot.on_top_of_book(tob("no1", "m1", "0.49", "0.50"))
    for leg in legs:
        bot.on_order_denied(OrderDenied(intent=leg, rule="bot_halted", reason="drawdown", denied_ns=0))
    assert not bot.operating
    assert arb(bot, T0 + 3_600_000) == 0  # an hour later, still nothing
    bot.on_control(cmd("resume"))
    assert arb(bot, T0 + 3_600_001) == 2


def test_a_buy_refused_for_want_of_room_is_not_proposed_again_for_30_s() -> None:
    bot = new_bot()
    bot.on_top_of_book(tob("yes1", "m1", "0.44", "0.45"))
    first = bot.place("yes1", "BUY", Decimal("0.44"), Decimal("10"))
    assert first is not None
    bot.on_order_denied(
        OrderDenied(intent=first, rule="position_size", reason="position 49 of 50", denied_ns=0)
    )
    assert bot.place("yes1", "BUY", Decimal("0.44"), Decimal("10")) is None
    assert bot.place("no1", "BUY", Decimal("0.50"), Decimal("10")) is not None  # another token
    assert bot.place("yes1", "SELL", Decimal("0.45"), Decimal("10")) is not None  # selling makes room
    bot.on_top_of_book(tob("yes1", "m1", "0.43", "0.45", ts_ms=T0 + 29_999))
    assert bot.place("yes1", "BUY", Decimal("0.43"), Decimal("10")) is None
    bot.on_top_of_book(tob("yes1", "m1", "0.44", "0.45", ts_ms=T0 + 30_000))
    assert bot.place("yes1", "BUY", Decimal("0.44"), Decimal("10")) is not None
