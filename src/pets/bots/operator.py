"""The thin Bytewax adapter that runs bots as stateful operators (the only bytewax import of pets.bots).

    events -> fan_out_to_bots -> key by bot id -> route_events (a Router per bot)
           -> key by "bot_id|routing key" -> run_bots (a Bot per key) -> intents

A bot instance owns one routing key: a market (condition id) for Bot 1 and Bot 5, a neg-risk event
for Bot 6, the whole bot for Bot 8 (its limits span markets). The Router of a bot sees all of that
bot's events: it learns which market belongs to which neg-risk event (from md.markets) and which keys
exist, so an operator command reaches every instance of the bot, and an instance created later gets
the latest portfolio command and the bot's latest command first. Both steps keep their state in
Bytewax's recovery store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bytewax import operators as op
from bytewax.dataflow import Stream

from pets.bots.base import PORTFOLIO_COMMANDS, Bot, Routing
from pets.bots.registry import bot_class, enabled_bots
from pets.flows.recovery import stateful_flat_map
from pets.schemas.config import PetsConfig
from pets.schemas.control import ALL_BOTS, ControlCommand
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ExecutionReport, OrderDenied, OrderIntent

BotEvent = MarketInfo | TopOfBook | ExecutionReport | OrderDenied | ControlCommand
WHOLE_BOT = "all"

_HANDLERS: dict[type, Callable[[Bot, Any], list[OrderIntent]]] = {
    TopOfBook: Bot.on_top_of_book,
    MarketInfo: Bot.on_market,
    ExecutionReport: Bot.on_execution_report,
    OrderDenied: Bot.on_order_denied,
    ControlCommand: Bot.on_control,
}


def dispatch(bot: Bot, event: BotEvent) -> list[OrderIntent]:
    """Call the bot's handler for the event's type (overrides in subclasses are honoured)."""
    return getattr(bot, _HANDLERS[type(event)].__name__)(event)  # type: ignore[no-any-return]


def owner(event: BotEvent) -> str | None:
    """The bot an event belongs to (reports and denials), None when every bot may want it."""
    if isinstance(event, ExecutionReport):
        return event.bot_id
    if isinstance(event, OrderDenied):
        return event.intent.bot_id
    return None


class Router:
    """Routing keys of one bot's instances (plain, picklable state of the route step)."""

    def __init__(self, bot_id: str, routing: Routing) -> None:
        self.bot_id = bot_id
        self.routing = routing
        self.event_of: dict[str, str] = {}  # condition id -> neg-risk event id
        self.keys: set[str] = set()
        # the latest portfolio command (`halt *`, `resume_trading`) and the latest one for this bot
        self.commands: dict[str, ControlCommand] = {}

    def route(self, event: BotEvent) -> list[tuple[str, BotEvent]]:
        if isinstance(event, ControlCommand):
            if not event.applies_to(self.bot_id):
                return []
            portfolio = event.bot_id == ALL_BOTS and event.command in PORTFOLIO_COMMANDS
            self.commands["portfolio" if portfolio else "bot"] = event
            return [(self._full(key), event) for key in sorted(self.keys)]
        key = self._key(event)
        if key is None:
            return []
        out: list[tuple[str, BotEvent]] = []
        if key not in self.keys:
            self.keys.add(key)
            out += [
                (self._full(key), self.commands[kind])
                for kind in ("portfolio", "bot")
                if kind in self.commands
            ]
        out.append((self._full(key), event))
        return out

    def _key(self, event: BotEvent) -> str | None:
        if self.routing == "bot":
            return WHOLE_BOT
        if isinstance(event, MarketInfo):
            if self.routing == "market":
                return event.condition_id
            if event.neg_risk and event.neg_risk_market_id:
                self.event_of[event.condition_id] = event.neg_risk_market_id
                return event.neg_risk_market_id
            return None
        market = event.intent.market if isinstance(event, OrderDenied) else event.market  # type: ignore[union-attr]
        return market if self.routing == "market" else self.event_of.get(market)

    def _full(self, key: str) -> str:
        return f"{self.bot_id}|{key}"


def run_bots(events: Stream[BotEvent], config: PetsConfig) -> Stream[OrderIntent]:
    """The bots of `config` (enabled ones only) as keyed stateful steps over `events`."""
    bots = {bot.id: bot for bot in enabled_bots(config)}
    classes = {bot_id: bot_class(bot) for bot_id, bot in bots.items()}
    venue = config.system.venue

    def fan_out(event: BotEvent) -> list[tuple[str, BotEvent]]:
        target = owner(event)
        if target is not None:
            return [(target, event)] if target in bots else []
        return [(bot_id, event) for bot_id in bots]

    def route(router: Router | None, pair: tuple[str, BotEvent]) -> tuple[Router, list[tuple[str, BotEvent]]]:
        bot_id, event = pair
        if router is None:
            router = Router(bot_id, classes[bot_id].routing)
        return router, router.route(event)

    def run(bot: Bot | None, item: tuple[str, BotEvent]) -> tuple[Bot, list[OrderIntent]]:
        key, event = item
        bot_id = key.split("|", 1)[0]
        if bot is None:
            bot = classes[bot_id](bots[bot_id], venue)
        elif not bot.bound:
            bot.bind(bots[bot_id], venue)  # restored from a snapshot: attach today's config
        return bot, dispatch(bot, event)

    pairs = op.flat_map("fan_out_to_bots", events, fan_out)
    by_bot = op.key_on("key_by_bot", pairs, lambda pair: pair[0])
    routed = stateful_flat_map("route_events", by_bot, route)
    by_instance = op.key_on("key_by_instance", op.key_rm("unkey_bot", routed), lambda item: item[0])
    intents = stateful_flat_map("run_bots", by_instance, run)
    return op.key_rm("unkey_instance", intents)
