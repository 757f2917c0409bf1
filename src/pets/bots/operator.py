"""The thin Bytewax adapter that runs bots as stateful operators (the only bytewax import of pets.bots).

    events -> fan_out_to_bots -> key by bot id -> route_events (a Router per bot)
           -> key by "bot_id|routing key" -> run_bots (a Bot per key) -> intents
                                            (signals the gate dropped -> dead letters)

A bot instance owns one routing key: a market (condition id) for Bot 1 and Bot 5, a neg-risk event
for Bot 6, the whole bot for Bot 8 (its limits span markets). The Router of a bot sees all of that
bot's events: it learns which market belongs to which neg-risk event (from md.markets) and which keys
exist, so an operator command reaches every instance of the bot, and an instance created later gets
the latest portfolio command and the bot's latest command first. Both steps keep their state in
Bytewax's recovery store.

Signals (signal.* topics, keyed by market) reach only the bots whose class names their source in
`signal_sources`, whale-wallet fills (chain.fill), whale rankings (whale.rankings) and news attention
features (features.news) only the bots naming those topics in `data_topics`: a fill goes to the instance
of its token's market, attention features to their market's, a ranking to every instance (the latest
ranking date is kept for instances created later). The Router of a signal-driven bot holds its
SignalGate (bots/signal_gate.py): it sees the bot's books and markets, so it passes a signal to the
instance of its market once the signal is new, unexpired and the book is fresh, and turns what it drops
into dead letters with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bytewax import operators as op
from bytewax.dataflow import Stream

from pets.bots.base import PORTFOLIO_COMMANDS, Bot, Routing
from pets.bots.registry import STRATEGY_CLASSES, bot_class, enabled_bots
from pets.bots.signal_gate import Dropped, SignalGate, dead_letter
from pets.flows.recovery import stateful_flat_map
from pets.schemas.config import PetsConfig
from pets.schemas.control import ALL_BOTS, ControlCommand, DeadLetter
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ExecutionReport, OrderDenied, OrderIntent
from pets.schemas.signals import NewsAttention, Signal, WalletFill, WhaleRanking

BotEvent = (
    MarketInfo | TopOfBook | ExecutionReport | OrderDenied | ControlCommand
    | Signal | WalletFill | WhaleRanking | NewsAttention
)
DATA_TOPICS: dict[type, str] = {
    WalletFill: "chain.fill",
    WhaleRanking: "whale.rankings",
    NewsAttention: "features.news",
}
WHOLE_BOT = "all"
DROPPED = "dropped"  # the routing key of the signals a gate dropped (dead letters, no bot instance)

_HANDLERS: dict[type, Callable[[Bot, Any], list[OrderIntent]]] = {
    TopOfBook: Bot.on_top_of_book,
    MarketInfo: Bot.on_market,
    ExecutionReport: Bot.on_execution_report,
    OrderDenied: Bot.on_order_denied,
    ControlCommand: Bot.on_control,
    Signal: Bot.on_signal,
    WalletFill: Bot.on_wallet_fill,
    WhaleRanking: Bot.on_whale_ranking,
    NewsAttention: Bot.on_news_attention,
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

    def __init__(self, bot_id: str, routing: Routing, gate: SignalGate | None = None) -> None:
        self.bot_id = bot_id
        self.routing = routing
        self.gate = gate  # for a bot that reads signals
        self.event_of: dict[str, str] = {}  # condition id -> neg-risk event id
        self.keys: set[str] = set()
        # the latest portfolio command (`halt *`, `resume_trading`) and the latest one for this bot
        self.commands: dict[str, ControlCommand] = {}
        self.market_of: dict[str, str] = {}  # token -> condition id (where a wallet fill goes)
        self.rankings: dict[str, WhaleRanking] = {}  # wallet -> rank, of the latest ranking date

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A Router from an older snapshot gets the attributes added since."""
        self.__dict__.update({"gate": None, "market_of": {}, "rankings": {}, **state})

    def _ranking(self, ranking: WhaleRanking) -> list[tuple[str, BotEvent]]:
        latest = next(iter(self.rankings.values()), None)
        if latest is not None and ranking.ranking_date > latest.ranking_date:
            self.rankings = {}
        if latest is None or ranking.ranking_date >= latest.ranking_date:
            self.rankings[ranking.wallet] = ranking
        return [(self._full(key), ranking) for key in sorted(self.keys)]

    def route(self, event: BotEvent) -> list[tuple[str, BotEvent | DeadLetter]]:
        if isinstance(event, MarketInfo):
            for token in event.token_ids:
                self.market_of[token] = event.condition_id
        elif isinstance(event, WhaleRanking):
            return self._ranking(event)  # type: ignore[return-value]
        gate = self.gate
        if gate is None:
            return self._route(event)  # type: ignore[return-value]
        if isinstance(event, Signal):
            ready, dropped = gate.offer(event)
            return self._signals(ready, dropped)
        if isinstance(event, MarketInfo):
            gate.on_market(event)
        elif isinstance(event, TopOfBook):
            ready, dropped = gate.on_book(event)
            if ready or dropped:  # the book first: the instance prices the signals off it
                return [*self._route(event), *self._signals(ready, dropped)]
        return self._route(event)  # type: ignore[return-value]

    def _signals(
        self, ready: list[Signal], dropped: list[Dropped]
    ) -> list[tuple[str, BotEvent | DeadLetter]]:
        out: list[tuple[str, BotEvent | DeadLetter]] = []
        for signal in ready:
            out += self._route(signal)
        out += [(DROPPED, dead_letter(item, f"bots.{self.bot_id}.signal_gate")) for item in dropped]
        return out

    def _route(self, event: BotEvent) -> list[tuple[str, BotEvent]]:
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
            out += [(self._full(key), ranking) for ranking in self.rankings.values()]
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
        if isinstance(event, WalletFill):
            market: str | None = self.market_of.get(event.asset_id)
            if market is None:
                return None  # a token of no market this bot was told about
        else:
            market = event.intent.market if isinstance(event, OrderDenied) else event.market  # type: ignore[union-attr]
        return market if self.routing == "market" else self.event_of.get(market)

    def _full(self, key: str) -> str:
        return f"{self.bot_id}|{key}"


def run_bots(
    events: Stream[BotEvent],
    config: PetsConfig,
    strategy_classes: Mapping[str, type[Bot]] = STRATEGY_CLASSES,
) -> tuple[Stream[OrderIntent], Stream[DeadLetter]]:
    """The bots of `config` (enabled ones only) as keyed stateful steps over `events`: their intents,
    and the signals their gates dropped as dead letters."""
    bots = {bot.id: bot for bot in enabled_bots(config)}
    classes = {bot_id: bot_class(bot, strategy_classes) for bot_id, bot in bots.items()}
    venue = config.system.venue
    readers: dict[str, list[str]] = {  # signal source or data topic -> the bots that read it
        name: [bot_id for bot_id, cls in classes.items() if name in (*cls.signal_sources, *cls.data_topics)]
        for cls in classes.values()
        for name in (*cls.signal_sources, *cls.data_topics)
    }

    def fan_out(event: BotEvent) -> list[tuple[str, BotEvent]]:
        if isinstance(event, Signal):
            return [(bot_id, event) for bot_id in readers.get(event.source, ())]
        data_topic = DATA_TOPICS.get(type(event))
        if data_topic is not None:
            return [(bot_id, event) for bot_id in readers.get(data_topic, ())]
        target = owner(event)
        if target is not None:
            return [(target, event)] if target in bots else []
        return [(bot_id, event) for bot_id in bots]

    def route(
        router: Router | None, pair: tuple[str, BotEvent]
    ) -> tuple[Router, list[tuple[str, BotEvent | DeadLetter]]]:
        bot_id, event = pair
        if router is None:
            cls = classes[bot_id]
            gate = SignalGate(config.system.signals) if cls.signal_sources else None
            router = Router(bot_id, cls.routing, gate)
        return router, router.route(event)

    def run(bot: Bot | None, item: tuple[str, BotEvent]) -> tuple[Bot, list[OrderIntent]]:
        key, event = item
        bot_id = key.split("|", 1)[0]
        if bot is None:
            bot = classes[bot_id](bots[bot_id], venue)
            bot.use_zones(config.zones)
        elif not bot.bound:
            bot.bind(bots[bot_id], venue)  # restored from a snapshot: attach today's config
            bot.use_zones(config.zones)
        return bot, dispatch(bot, event)

    pairs = op.flat_map("fan_out_to_bots", events, fan_out)
    by_bot = op.key_on("key_by_bot", pairs, lambda pair: pair[0])
    routed = op.key_rm("unkey_bot", stateful_flat_map("route_events", by_bot, route))
    split = op.branch("split_dropped_signals", routed, lambda item: item[0] != DROPPED)
    dropped: Stream[DeadLetter] = op.map("dropped_signals", split.falses, lambda item: item[1])  # type: ignore[arg-type,return-value]
    by_instance = op.key_on("key_by_instance", split.trues, lambda item: item[0])
    intents = stateful_flat_map("run_bots", by_instance, run)  # type: ignore[arg-type]
    return op.key_rm("unkey_instance", intents), dropped
