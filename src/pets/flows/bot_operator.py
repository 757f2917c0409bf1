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

from collections.abc import Mapping

from bytewax import operators as op
from bytewax.dataflow import Stream

from pets.bots.base import Bot
from pets.bots.registry import STRATEGY_CLASSES, bot_class, enabled_bots
from pets.bots.routing import (
    DROPPED,
    BotEvent,
    Router,
    dispatch,
    fan_out,
    new_instance,
    new_router,
    readers_of,
)
from pets.flows.recovery import stateful_flat_map
from pets.schemas.config import PetsConfig
from pets.schemas.control import DeadLetter
from pets.schemas.orders import OrderIntent


def run_bots(
    events: Stream[BotEvent],
    config: PetsConfig,
    strategy_classes: Mapping[str, type[Bot]] = STRATEGY_CLASSES,
) -> tuple[Stream[OrderIntent], Stream[DeadLetter]]:
    """The bots of `config` (enabled ones only) as keyed stateful steps over `events`: their intents,
    and the signals their gates dropped as dead letters."""
    bots = {bot.id: bot for bot in enabled_bots(config)}
    classes = {bot_id: bot_class(bot, strategy_classes) for bot_id, bot in bots.items()}
    readers = readers_of(classes)

    def fan_out_step(event: BotEvent) -> list[tuple[str, BotEvent]]:
        return [(bot_id, event) for bot_id in fan_out(event, bots, readers)]

    def route(
        router: Router | None, pair: tuple[str, BotEvent]
    ) -> tuple[Router, list[tuple[str, BotEvent | DeadLetter]]]:
        bot_id, event = pair
        if router is None:
            router = new_router(bot_id, classes[bot_id], config)
        return router, router.in_order(event)

    def run(bot: Bot | None, item: tuple[str, BotEvent]) -> tuple[Bot, list[OrderIntent]]:
        key, event = item
        bot_id = key.split("|", 1)[0]
        if bot is None:
            bot = new_instance(classes[bot_id], bots[bot_id], config)
        elif not bot.bound:
            bot.bind(bots[bot_id], config.system.venue)  # restored from a snapshot: attach today's config
            bot.use_zones(config.zones)
        return bot, dispatch(bot, event)

    pairs = op.flat_map("fan_out_to_bots", events, fan_out_step)
    by_bot = op.key_on("key_by_bot", pairs, lambda pair: pair[0])
    routed = op.key_rm("unkey_bot", stateful_flat_map("route_events", by_bot, route))
    split = op.branch("split_dropped_signals", routed, lambda item: item[0] != DROPPED)
    dropped: Stream[DeadLetter] = op.map("dropped_signals", split.falses, lambda item: item[1])  # type: ignore[arg-type,return-value]
    by_instance = op.key_on("key_by_instance", split.trues, lambda item: item[0])
    intents = stateful_flat_map("run_bots", by_instance, run)  # type: ignore[arg-type]
    return op.key_rm("unkey_instance", intents), dropped
