"""Tops of book reach only the bot instances and signal gates that can use them (`BotInstances`, the
embedded loop's hot path), and a run decides exactly what it decides when every top reaches every
instance and gate, which is what the bots flow does (fan_out -> Router.route for every top)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from pets.bots.base import Bot
from pets.bots.kelly_value_betting import KellyValueBetting
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
TIMERS: Counter[str] = Counter()  # bot id -> timers fired on its instances
# bot id -> catch-ups on another market's tops handed to its instances while a reload timer is due
FOREIGN_AT_TIMERS: Counter[str] = Counter()
AT_TIMER: list[str | None] = [None]  # the market of the top at a due timer, while it is handled
GATES_AT_TIMERS: Counter[str] = Counter()  # bot id -> its kept-back gate's clock moved at a due timer


def counting(cls: type[Bot]) -> type[Bot]:
    class Counted(cls):  # type: ignore[valid-type,misc]
        def on_top_of_book(self, tob: TopOfBook) -> list[OrderIntent]:
            TOPS[self.bot_id] += 1
            return super().on_top_of_book(tob)  # type: ignore[no-any-return]

        def on_timer(self, now_ms: int) -> list[OrderIntent]:
            TIMERS[self.bot_id] += 1
            return super().on_timer(now_ms)  # type: ignore[no-any-return]

        def catch_up(self, tops: dict[str, TopOfBook], newest_ms: int) -> None:
            due_market = AT_TIMER[0]
            if due_market is not None and any(top.market != due_market for top in tops.values()):
                FOREIGN_AT_TIMERS[self.bot_id] += 1
            super().catch_up(tops, newest_ms)

    return Counted


CLASSES: Mapping[str, type[Bot]] = {name: counting(cls) for name, cls in STRATEGY_CLASSES.items()}


class EveryTop(BotInstances):
    """The reference: every top goes through fan_out and each bot's Router, to every instance and gate."""

    def on_top_of_book(
        self, tob: TopOfBook, asset_id: str, ts_ms: int
    ) -> tuple[list[OrderIntent], list[DeadLetter]]:
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
) -> tuple[Journal, dict[str, int], Counter[str], Counter[str]]:
    TOPS.clear()
    TIMERS.clear()
    FOREIGN_AT_TIMERS.clear()
    GATES_AT_TIMERS.clear()
    journal = Journal()
    loop = TradingLoop(CONFIG, markets, journal=journal, classes=CLASSES, routing=routing)
    loop.run(inputs)  # type: ignore[arg-type]
    return journal, loop.stats.signals, Counter(TOPS), Counter(TIMERS)


def assert_same_decisions(
    markets: list[MarketInfo], inputs: list[object]
) -> tuple[Journal, Counter[str], Counter[str], Counter[str]]:
    routed, routed_gates, routed_tops, routed_timers = run(TimerWatch, markets, inputs)
    every, every_gates, every_tops, every_timers = run(EveryTop, markets, inputs)
    assert routed_timers == every_timers  # every instance's timers fired as often
    assert routed.intents == every.intents  # every bot's intents, in order, field by field
    assert routed.approved == every.approved
    assert routed.denials == every.denials
    assert routed.reports == every.reports
    assert routed.dead_letters == every.dead_letters
    assert routed.pnl == every.pnl
    assert routed_gates == every_gates  # the SignalGates passed, held and dropped the same signals
    return routed, routed_tops, every_tops, routed_timers


def test_routing_tops_drops_nothing_a_bot_acts_on_in_the_simulator() -> None:
    # seed 7, 10 min: every bot trades, a signal waits for its book once (a gate on the book path)
    source = sources.simulated(CONFIG, seed=7, duration_s=600)
    assert source.events is not None
    inputs: list[object] = list(source.events())
    routed, routed_tops, every_tops, _ = assert_same_decisions(source.markets, inputs)
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
    routed, routed_tops, every_tops, timers = assert_same_decisions(source.markets, inputs)
    assert routed.intents, "the order-book bots should trade on the recordings"
    # no signal and no model here: the signal- and model-driven bots get only the tops that build
    # their routes, a few each; Bots 9 and 10 check for a model every 60 s of venue time (`timers`,
    # as often as when every top reaches them), and their timer takes the top's book and clock but
    # not the top itself, which would change nothing (before: every top at a reload timer)
    for bot_id in ("bot_02", "bot_03", "bot_04", "bot_07", "bot_09", "bot_10"):
        assert routed_tops[bot_id] < every_tops[bot_id] / 10, bot_id
        assert routed_tops[bot_id] < timers["bot_09"] / 10, bot_id
    assert timers["bot_10"] == timers["bot_09"]


def test_a_reload_timer_that_finds_no_model_catches_up_on_no_other_market(shared_data: Path) -> None:
    paths = sorted((shared_data / "polymarket" / "l2").glob("*.jsonl.gz"))[:3]
    if not paths:
        pytest.skip(f"no recordings in {shared_data / 'polymarket' / 'l2'}")
    source = sources.replay(paths)
    run(TimerWatch, source.markets, list(source.frames))
    # Bots 9 and 10 (one instance each, routed by bot) read every market, but a reload timer that
    # finds no model leaves them without use for tops: the other markets' tops stay kept back
    # (before: the due ones caught up on every market at each of their timers), and the per-market
    # instances of the other kept-back bots (2, 3, 4, 7) are not handed another market's backlog there
    assert not FOREIGN_AT_TIMERS, FOREIGN_AT_TIMERS
    # nor do the kept-back SignalGates of the market catch up there (before: all of them, at every
    # reload timer): no timer of theirs is due, and they catch up before anything else reaches them
    assert not GATES_AT_TIMERS, GATES_AT_TIMERS


ARMED_FROM_MS = 1_750_361_700_000  # 2025-06-19 19:35 UTC, two games of the recordings under way


class Armed(KellyValueBetting):
    """Bot 9 with a stand-in for a model that a reload timer finds (from ARMED_FROM_MS of venue time):
    from then on each top it evaluates notes every book it holds, as a promoted model's Kelly stake
    reads them (what it holds, at their mids)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.armed = False
        self.noted: list[tuple[str, int, list[tuple[str, int]]]] = []

    def _on_timer(self, now_ms: int) -> list[OrderIntent]:
        self.armed = self.armed or now_ms >= ARMED_FROM_MS
        return super()._on_timer(now_ms)  # type: ignore[no-any-return]

    def wants_tops(self) -> bool:
        return self.armed or super().wants_tops()  # type: ignore[no-any-return]

    def _on_book(self, tob: TopOfBook) -> list[OrderIntent]:
        if self.armed:
            self.noted.append((tob.asset_id, tob.ts_ms, sorted((a, b.ts_ms) for a, b in self.books.items())))
        return super()._on_book(tob)  # type: ignore[no-any-return]


def test_a_reload_timer_that_arms_a_bot_wide_instance_hands_it_every_market_first(shared_data: Path) -> None:
    names = ("20250619_mlb-kc-tex-2025-06-19", "20250619_mlb-min-cin-2025-06-19")  # at the same time
    paths = [shared_data / "polymarket" / "l2" / f"{name}.jsonl.gz" for name in names]
    if not all(path.is_file() for path in paths):
        pytest.skip(f"recordings {names} not in {shared_data / 'polymarket' / 'l2'}")
    source = sources.replay(paths)
    frames: list[object] = list(source.frames)
    # Bot 9 kept back on both markets until the reload timer that arms it, on a top of one of them:
    # it must then see the other market's latest book too, as when every top reaches it
    noted = []
    for routing in (TimerWatch, EveryTop):
        loop = TradingLoop(CONFIG, source.markets, classes={**CLASSES, "kelly_value_betting": Armed},
                           routing=routing)  # fmt: skip
        loop.run(frames)  # type: ignore[arg-type]
        (bot,) = [bot for bot in loop.bots if isinstance(bot, Armed)]
        noted.append(bot.noted)
    routed, every = noted
    assert every, "Bot 9 should be armed half-way"
    assert len(every[0][2]) == 4, "the top that armed it should find the books of both markets"
    assert routed == every  # the same books, top by top, from the first it evaluates armed


def test_the_classes_that_skip_tops_fire_their_timers_as_bot_does() -> None:
    # the routing fires a kept-back instance's due timer itself (`on_timer`, then `after_timer`), as
    # `Bot.on_top_of_book` fires the instance's own timer (`timed_parts`)
    for cls in STRATEGY_CLASSES.values():
        if cls.skips_tops:
            below_bot = cls.__mro__[: cls.__mro__.index(Bot)]
            names = ("on_top_of_book", "timed_parts")
            overrides = {name for c in below_bot for name in names if name in vars(c)}
            assert not overrides, (cls.__name__, overrides)
