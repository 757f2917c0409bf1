"""Trading state of the portfolio and of each bot, changed by operator commands and circuit breakers.

Portfolio (NautilusTrader's states): ACTIVE; REDUCING after the daily loss limit, until the next UTC
day (only cancels and sells of held tokens, so one-legged baskets can still be unwound); HALTED after
an emergency (operator `halt` or the portfolio drawdown breaker): nothing but cancels until an operator
sends `resume_trading`.
Bot: RUNNING; PAUSED (operator pause, or the consecutive-loss / daily-loss breaker) until a time or a
`resume`; HALTED by its drawdown breaker or an operator `halt ID` until `resume`/`start`; STOPPED by
`stop` until `start`. Paused and halted bots may still reduce positions; a stopped bot may not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pets.risk.denial import Denial
from pets.schemas.control import ControlCommand


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class BotState(StrEnum):
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"
    HALTED = "HALTED"


@dataclass(slots=True)
class Status:
    """A state with its reason and, for timed states, when it ends (None = until an operator acts)."""

    state: str
    reason: str = ""
    until_ns: int | None = None

    def expired(self, now_ns: int) -> bool:
        return self.until_ns is not None and now_ns >= self.until_ns


def bot_status_after(status: Status, cmd: ControlCommand) -> Status:
    """The bot's status after an operator command addressed to it."""
    who = f"by {cmd.issued_by}" + (f": {cmd.reason}" if cmd.reason else "")
    if cmd.command == "start":
        return Status(BotState.RUNNING, f"started {who}")
    if cmd.command == "resume" and status.state != BotState.STOPPED:
        return Status(BotState.RUNNING, f"resumed {who}")
    if cmd.command == "stop":
        return Status(BotState.STOPPED, f"stopped {who}")
    if cmd.command == "pause":
        return Status(BotState.PAUSED, f"paused {who}", cmd.until_ns)
    if cmd.command == "halt":
        return Status(BotState.HALTED, f"halted {who}")
    return status


def portfolio_status_after(status: Status, cmd: ControlCommand) -> Status:
    """The portfolio's status after a portfolio-wide command (`halt *`, `resume_trading`)."""
    who = f"by {cmd.issued_by}" + (f": {cmd.reason}" if cmd.reason else "")
    if cmd.command == "halt":
        return Status(TradingState.HALTED, f"emergency halt {who}")
    if cmd.command == "resume_trading":
        return Status(TradingState.ACTIVE, f"trading resumed {who}")
    return status


# the members as plain constants for the checks every order runs (an Enum attribute lookup is slow)
ACTIVE: Final = TradingState.ACTIVE
REDUCING: Final = TradingState.REDUCING
HALTED: Final = TradingState.HALTED
RUNNING: Final = BotState.RUNNING
PAUSED: Final = BotState.PAUSED
STOPPED: Final = BotState.STOPPED
BOT_HALTED: Final = BotState.HALTED


def check_portfolio(status: Status, reducing: bool) -> Denial | None:
    state = status.state
    if state == ACTIVE:
        return None
    if state == HALTED:
        return Denial("halted", f"trading halted ({status.reason}); an operator must resume trading")
    if state == REDUCING and not reducing:
        return Denial("halted", f"trading reduced to closing orders ({status.reason})")
    return None


def check_bot(bot_id: str, status: Status, reducing: bool) -> Denial | None:
    state = status.state
    if state == RUNNING:
        return None
    if state == STOPPED:
        return Denial("bot_stopped", f"{bot_id} is stopped ({status.reason})")
    if reducing:
        return None
    if state == PAUSED:
        return Denial("bot_paused", f"{bot_id} is paused ({status.reason})")
    if state == BOT_HALTED:
        return Denial("bot_halted", f"{bot_id} is halted ({status.reason})")
    return None
