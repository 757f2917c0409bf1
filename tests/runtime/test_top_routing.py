"""Tops of book reach only the bot instances and signal gates that can use them (`BotInstances`, the
embedded loop's hot path), and a run decides exactly what it decides when every top reaches every
instance and gate, which is what the bots flow does (fan_out -> Router.route for every top)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from pets.bots.base import Bot
from pets.bots.registry import STRATEGY_CLASSES
from pets.bots.routing import BookRoute, BotInstances
from pets.runtime import sources
from pets.runtime.journal import Journal
from pets.runtime.loop import TradingLoop
from pets.schemas.config import load_config
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import OrderIntent
from pets.settings import project_root

CONFIG = load_config(project_root() / "config")  # all ten bots enabled
TOPS: Counter[str] = Counter()  # bot id -> tops of book handed to its instances
# bot id -> catch-ups on another market's tops handed to its instances while a reload timer is due
FOREIGN_AT_TIMERS: Counter[str] = Counter()
AT_TIMER: list[str | None] = [None]  # the market of the top at a due timer, while it is handled
GATES_AT_TIMERS: Counter[str] = Counter()  # bot id -> its kept-back gate's clock moved at a due timer


def counting(cls: type[Bot]) -> type[Bot]:
    class Counted(cls):  # type: ignore[valid-type,misc]
        def on_top_of_book(self, tob: TopOfBook) -> list[OrderIntent]:
            TOPS[self.bot_id] += 1
            return super().on_top_of_book(tob)  # type: ignore[no-any-return]

        def catch_up(self, tops: dict[str, TopOfBook], newest_ms: int) -> None:
            due_market = AT_TIMER[0]
            if due_market is not None and any(top.market != due_market for top in tops.values()):
                FOREIGN_AT_TIMERS[self.bot_id] += 1
            super().catch_up(tops, newest_ms)

    return Counted


CLASSES: Mapping[str, type[Bot]] = {name: counting(cls) for name, cls in STRATEGY_CLASSES.items()}


class EveryTop(BotInstances):
    """The reference: every top goes through fan_out and each bot's Router, to every instance and gate."""

    def on_top_of_book(self, tob: TopOfBook) -> tuple[list[OrderIntent], list[DeadLetter]]:
        return self.on_event(tob)


class TimerWatch(BotInstances):
    """The routed path, noting which catch-ups happen while a kept-back instance's timer is due."""

    def _on_due(self, route: BookRoute, tob: TopOfBook) -> tuple[list[OrderIntent], list[DeadLetter]]:
        AT_TIMER[0] = tob.market
        gates = route.backlog.gates if route.backlog is not None else []
        clocks = [gate.clock_ms for _, gate in gates]
        try:
            return super()._on_due(route, tob)
        finally:
            AT_TIMER[0] = None
            GATES_AT_TIMERS.update(bot_id for (bot_id, gate), clock in zip(gates, clocks, strict=True)
                                   if gate.clock_ms != clock)  # fmt: skip


def run(
    routing: type[BotInstances],
    markets: list[MarketInfo],
    inputs: Iterable[object],
) -> tuple[Journal, dict[str, int], Counter[str]]:
    TOPS.clear()
    FOREIGN_AT_TIMERS.clear()
    GATES_AT_TIMERS.clear()
    journal = Journal()
    loop = TradingLoop(CONFIG, markets, journal=journal, classes=CLASSES, routing=routing)
    loop.run(inputs)  # type: ignore[arg-type]
    return journal, loop.stats.signals, Counter(TOPS)


def assert_same_decisions(
    markets: list[MarketInfo], inputs: list[object]
) -> tuple[Journal, Counter[str], Counter[str]]:
    routed, routed_gates, routed_tops = run(TimerWatch, markets, inputs)
    every, every_gates, every_tops = run(EveryTop, markets, inputs)
    assert routed.intents == every.intents  # every bot's intents, in order, field by field
    assert routed.approved == every.approved
    assert routed.denials == every.denials
    assert routed.reports == every.reports
    assert routed.dead_letters == every.dead_letters
    assert routed.pnl == every.pnl
    assert routed_gates == every_gates  # the SignalGates passed, held and dropped the same signals
    return routed, routed_tops, every_tops


def test_routing_tops_drops_nothing_a_bot_acts_on_in_the_simulator() -> None:
    # seed 7, 10 min: every bot trades, a signal waits for its book once (a gate on the book path)
    source = sources.simulated(CONFIG, seed=7, duration_s=600)
    assert source.events is not None
    inputs: list[object] = list(source.events())
    routed, routed_tops, every_tops = assert_same_decisions(source.markets, inputs)
    trading = {intent.bot_id for intent in routed.intents}
    assert trading == {bot.id for bot in CONFIG.bots}, "every bot should trade on the simulator"
    # the signal- and model-driven bots were handed fewer tops: Bot 3 (whale fills) next to none, the
    # others all of them while they hold a forecast, a view, attention, a position (Bot 4)
    assert routed_tops["bot_03"] < every_tops["bot_03"] / 10
    for bot_id in ("bot_02", "bot_04", "bot_07", "bot_09", "bot_10"):
        assert routed_tops[bot_id] < every_tops[bot_id], bot_id
    for bot_id in ("bot_01", "bot_05", "bot_06", "bot_08"):
        assert routed_tops[bot_id] == every_tops[bot_id], bot_id


def test_routing_tops_drops_nothing_on_the_shared_recordings(shared_data: Path) -> None:
    paths = sorted((shared_data / "polymarket" / "l2").glob("*.jsonl.gz"))[:3]
    if not paths:
        pytest.skip(f"no recordings in {shared_data / 'polymarket' / 'l2'}")
    source = sources.replay(paths)
    inputs: list[object] = list(source.frames)
    routed, routed_tops, every_tops = assert_same_decisions(source.markets, inputs)
    assert routed.intents, "the order-book bots should trade on the recordings"
    # no signal reaches anyone here: the signal- and model-driven bots get a top only when a timer of
    # theirs is due (Bots 9 and 10: the model check every 60 s of venue time), and the first ones
    for bot_id in ("bot_02", "bot_03", "bot_04", "bot_07", "bot_09", "bot_10"):
        assert routed_tops[bot_id] < every_tops[bot_id] / 10, bot_id
    # the top at a reload timer goes to the due instances (Bots 9 and 10), not to every instance of its
    # market: the others get a top when a route is built (before: at every reload of Bots 9 and 10 too)
    for bot_id in ("bot_02", "bot_03", "bot_04", "bot_07"):
        assert routed_tops[bot_id] < routed_tops["bot_09"] / 10, bot_id


def test_a_reload_timer_catches_up_only_the_due_instances_on_every_market(shared_data: Path) -> None:
    paths = sorted((shared_data / "polymarket" / "l2").glob("*.jsonl.gz"))[:3]
    if not paths:
        pytest.skip(f"no recordings in {shared_data / 'polymarket' / 'l2'}")
    source = sources.replay(paths)
    run(TimerWatch, source.markets, list(source.frames))
    # Bots 9 and 10 (one instance each, routed by bot) read every market: at a reload timer the due
    # one catches up on all of them; the per-market instances of the other kept-back bots (2, 3, 4, 7)
    # are not handed another market's backlog there (before: every market's, at every reload timer)
    assert FOREIGN_AT_TIMERS["bot_09"] > 0
    assert FOREIGN_AT_TIMERS["bot_10"] > 0
    assert set(FOREIGN_AT_TIMERS) == {"bot_09", "bot_10"}, FOREIGN_AT_TIMERS
    # nor do the kept-back SignalGates of the market catch up there (before: all of them, at every
    # reload timer): no timer of theirs is due, and they catch up before anything else reaches them
    assert not GATES_AT_TIMERS, GATES_AT_TIMERS
