"""Which bot instance gets which event: the routing the bots flow and the `pets run` loop share.

A bot instance owns one routing key: a market (condition id) for Bot 1 and Bot 5, a neg-risk event
for Bot 6, the whole bot for Bot 8 (its limits span markets). `fan_out` names the bots an event is for,
the `Router` of each bot picks the instance (and hands a new instance the latest operator commands
and whale rankings first), `dispatch` calls the instance's handler. The bots flow runs these as
Bytewax steps (bots/operator.py); `BotInstances` runs them in one process for the embedded loop,
so both create the same instances, which number their client order ids, keep their venue clocks and
fire their timers alike (docs/running.md). In one process `BotInstances` also keeps tops of book from
the instances and gates that cannot use them (`Bot.wants_tops`) and hands them over before anything
else reaches them (`Backlog`): the same decisions for a fraction of the calls.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from typing import Any, Final

from mypy_extensions import mypyc_attr

from pets.bots.base import PORTFOLIO_COMMANDS, Bot, Routing
from pets.bots.registry import STRATEGY_CLASSES, bot_class, enabled_bots
from pets.bots.signal_gate import Dropped, SignalGate, dead_letter
from pets.schemas.config import BotConfig, PetsConfig
from pets.schemas.control import ALL_BOTS, ControlCommand, DeadLetter
from pets.schemas.market_data import MarketInfo, TopOfBook, same_top
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
NS_PER_MS = 1_000_000
BookHandler = Callable[[TopOfBook], list[OrderIntent]]
# a route's step: the router's place in the config's order, the handlers of its instance (one per
# market at most), the router when its gate has signals waiting
Step = tuple[int, list[BookHandler], "Router | None"]
NEVER: Final = (1 << 62) - 1  # a time no timer reaches (compiled: a short int, compared per top)
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


@mypyc_attr(allow_interpreted_subclasses=True)  # snapshotted by the bots flow (pets.native)
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
        self.tops: dict[str, TopOfBook] = {}  # asset -> its last top that went on to an instance
        self.top_ms = 0  # the newest top's venue time (`in_order`)
        self.waiting: list[ExecutionReport] = []  # reports waiting for a later top (`in_order`)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A Router from an older snapshot gets the attributes added since."""
        defaults: dict[str, Any] = {
            "gate": None, "market_of": {}, "rankings": {}, "tops": {}, "top_ms": 0, "waiting": [],
        }  # fmt: skip
        for name, value in {**defaults, **state}.items():
            setattr(self, name, value)

    def in_order(self, event: BotEvent) -> list[tuple[str, BotEvent | DeadLetter]]:
        """`route` for the bots flow, where md.tob and exec.report interleave as they arrive. `pets run`
        hands the bots every top of a frame, then the reports the frame caused (fills, and the acks of
        orders priced off it), then the next frame. Here a report stamped no earlier than the newest
        top seen waits for the first later top and goes on just before it (or before a MarketInfo,
        which in `pets run` follows them too), so a bot sees them in that order (docs/running.md)."""
        if isinstance(event, TopOfBook):
            out = self._release(event.ts_ms * NS_PER_MS) if self.waiting else []
            if event.ts_ms > self.top_ms:
                self.top_ms = event.ts_ms
            return out + self.route(event)
        if isinstance(event, ExecutionReport) and event.ts_ns >= self.top_ms * NS_PER_MS:
            self.waiting.append(event)
            return []
        if isinstance(event, MarketInfo) and self.waiting:
            return self._release(None) + self.route(event)
        return self.route(event)

    def _release(self, before_ns: int | None) -> list[tuple[str, BotEvent | DeadLetter]]:
        """The waiting reports stamped before `before_ns` (None: all), routed in arrival order."""
        out: list[tuple[str, BotEvent | DeadLetter]] = []
        keep: list[ExecutionReport] = []
        for report in self.waiting:
            if before_ns is None or report.ts_ns < before_ns:
                out += self.route(report)
            else:
                keep.append(report)
        self.waiting = keep
        return out

    def _ranking(self, ranking: WhaleRanking) -> list[tuple[str, BotEvent]]:
        latest = next(iter(self.rankings.values()), None)
        if latest is not None and ranking.ranking_date > latest.ranking_date:
            self.rankings = {}
        if latest is None or ranking.ranking_date >= latest.ranking_date:
            self.rankings[ranking.wallet] = ranking
        return [(self._full(key), ranking) for key in sorted(self.keys)]

    def route(self, event: BotEvent) -> list[tuple[str, BotEvent | DeadLetter]]:
        if isinstance(event, TopOfBook):
            held = self.tops.get(event.asset_id)
            if held is not None and same_top(held, event):
                return []  # nothing a bot reads moved, not even its clock: as `pets run` (docs/running.md)
            self.tops[event.asset_id] = event
        elif isinstance(event, MarketInfo):
            for token in event.token_ids:
                self.market_of[token] = event.condition_id
        elif isinstance(event, WhaleRanking):
            return self._ranking(event)  # type: ignore[return-value]
        gate = self.gate
        if gate is None:
            return self._route(event)  # type: ignore[return-value]
        if isinstance(event, Signal):
            ready, dropped = gate.offer(event)
            return self.signals(ready, dropped)
        if isinstance(event, MarketInfo):
            gate.on_market(event)
        elif isinstance(event, TopOfBook):
            ready, dropped = gate.on_book(event)
            if ready or dropped:  # the book first: the instance prices the signals off it
                return [*self._route(event), *self.signals(ready, dropped)]
        return self._route(event)  # type: ignore[return-value]

    def signals(
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

    def route_keys(self, tob: TopOfBook) -> list[tuple[str, TopOfBook]]:
        """Where `route` sends this top once its instance exists (no state changes)."""
        key = self._key(tob)
        return [] if key is None or key not in self.keys else [(self._full(key), tob)]

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


def reads(cls: type[Bot]) -> tuple[str, ...]:
    """The signal sources and data topics a bot class reads."""
    return (*cls.signal_sources, *cls.data_topics)


def readers_of(classes: Mapping[str, type[Bot]]) -> dict[str, list[str]]:
    """Signal source or data topic -> the bots (ids) whose class reads it."""
    return {
        name: [bot_id for bot_id, cls in classes.items() if name in reads(cls)]
        for cls in classes.values()
        for name in reads(cls)
    }


def fan_out(event: BotEvent, bot_ids: Iterable[str], readers: Mapping[str, list[str]]) -> list[str]:
    """The bots an event is for: a signal's or data topic's readers, a report's or denial's owner, else
    every bot."""
    if isinstance(event, Signal):
        return list(readers.get(event.source, ()))
    data_topic = DATA_TOPICS.get(type(event))
    if data_topic is not None:
        return list(readers.get(data_topic, ()))
    target = owner(event)
    if target is not None:
        return [target] if target in bot_ids else []
    return list(bot_ids)


def new_router(bot_id: str, cls: type[Bot], config: PetsConfig) -> Router:
    return Router(bot_id, cls.routing, SignalGate(config.system.signals) if cls.signal_sources else None)


def new_instance(cls: type[Bot], bot: BotConfig, config: PetsConfig) -> Bot:
    instance = cls(bot, config.system.venue)
    instance.use_zones(config.zones)
    return instance


class Backlog:
    """The tops of one market kept back from the consumers that can do without them (a bot instance
    whose `wants_tops` says no, a SignalGate with no signal waiting) since the routes were built: the
    latest per token and the newest time, which is all such a consumer keeps of them (`catch_up`)."""

    __slots__ = ("bots", "gates", "newest_ms", "tops")

    def __init__(self) -> None:
        self.tops: dict[str, TopOfBook] = {}
        self.newest_ms = 0
        self.bots: list[tuple[str, Bot]] = []  # (bot id, instance)
        self.gates: list[tuple[str, SignalGate]] = []  # (bot id, its gate)

    def catch_up(self, bot_ids: Container[str] | None) -> None:
        """Hand what was kept back to the consumers of these bots (None: all). Repeatable: a consumer
        stays kept back until the routes are rebuilt, so the latest tops are still its latest."""
        tops, newest_ms = self.tops, self.newest_ms
        for bot_id, bot in self.bots:
            if bot_ids is None or bot_id in bot_ids:
                bot.catch_up(tops, newest_ms)
        for bot_id, gate in self.gates:
            if bot_ids is None or bot_id in bot_ids:
                gate.catch_up(tops, newest_ms)

    def catch_up_instances(self, instances: list[Bot]) -> None:
        """`catch_up` for these instances alone (not their gates, nor other instances of their bots)."""
        tops, newest_ms = self.tops, self.newest_ms
        for _, bot in self.bots:
            for instance in instances:
                if bot is instance:
                    bot.catch_up(tops, newest_ms)
                    break


class BookRoute:
    """Where the tops of one market go: per router (in order) the handlers of the instances that want
    them and the router when its gate has signals waiting (`Step`); the backlog of the consumers kept
    back."""

    __slots__ = ("backlog", "due_ms", "routes", "watched")

    def __init__(self) -> None:
        self.routes: list[Step] = []
        self.backlog: Backlog | None = None
        # at or before the earliest timer of a kept-back instance: a top from then checks who is due
        self.due_ms = NEVER
        self.watched: list[Bot] = []  # instances handed the tops that may stop wanting them


@mypyc_attr(allow_interpreted_subclasses=True)
class BotInstances:
    """The enabled bots of `config` as the bots flow runs them, in one process: `on_event` routes an
    event like the flow's fan_out -> route_events -> run_bots steps and returns the intents and the
    dead letters of dropped signals, in the order the steps produce them for one event.

    Tops of book (`on_top_of_book`, the hot path) reach only the consumers that can use them: a bot
    instance whose class `skips_tops` and whose `wants_tops` says no (no signal, forecast, position or
    model to act on: Bots 2, 3, 7, 9, 10 most of the time) and a SignalGate with no signal waiting get
    nothing per top; the market's Backlog keeps the latest top per token and the newest time, and they
    `catch_up` before anything else reaches them (a signal, a report, a command, a market) and before
    their timer is due. What they end up with is what every top would have given them: the same
    books, clocks and timers, so the same intents (tests/runtime/test_top_routing.py checks it against
    every top to every instance, which is what the bots flow does)."""

    def __init__(self, config: PetsConfig, classes: Mapping[str, type[Bot]] = STRATEGY_CLASSES) -> None:
        self.config = config
        self.configs = {bot.id: bot for bot in enabled_bots(config)}
        self.classes = {bot_id: bot_class(bot, classes) for bot_id, bot in self.configs.items()}
        self.readers = readers_of(self.classes)
        self.routers = {bot_id: new_router(bot_id, cls, config) for bot_id, cls in self.classes.items()}
        self._order = {bot_id: index for index, bot_id in enumerate(self.routers)}  # `Step`
        self.instances: dict[str, Bot] = {}  # "bot_id|routing key" -> instance, in creation order
        # the bots whose instances or gate the routes may keep tops from
        self._selective = {
            bot_id for bot_id, cls in self.classes.items() if cls.skips_tops or self.routers[bot_id].gate
        }
        self._routes: dict[str, BookRoute] = {}  # market -> where its tops go
        self._backlogs: list[Backlog] = []
        self._kept_bots: set[str] = set()  # bots with a consumer in some backlog
        # what the routes were built on: instance key -> (wants_tops, timers), bot id -> its gate had
        # signals waiting
        self._wanted: dict[str, tuple[bool, tuple[int, ...]]] = {}
        self._waiting: dict[str, bool] = {}
        self._kept_keys: dict[int, str] = {}  # id of a kept-back instance -> its key in `_wanted`

    def __iter__(self) -> Iterator[Bot]:
        self._invalidate()  # whoever reads the instances sees them caught up
        return iter(self.instances.values())

    def gates(self) -> list[SignalGate]:
        return [router.gate for router in self.routers.values() if router.gate is not None]

    def on_top_of_book(
        self, tob: TopOfBook, asset_id: str, ts_ms: int
    ) -> tuple[list[OrderIntent], list[DeadLetter]]:
        """`on_event` for a top of book (the caller has dropped a `same_top` one, and read its token and
        time: a TopOfBook field costs a generic attribute read when compiled), without routing it
        again once its market's route is known: each router's instances that want it get the top, then
        its gate, when signals wait there, releases those the book frees, as `Router.route` orders
        them; the rest is kept back in the market's backlog."""
        route = self._routes.get(tob.market)
        if route is None:
            out = self.on_event(tob)
            self._routes[tob.market] = self._route_of(tob)
            return out
        backlog = route.backlog
        if backlog is not None:
            backlog.tops[asset_id] = tob
            if ts_ms > backlog.newest_ms:
                backlog.newest_ms = ts_ms
        if ts_ms >= route.due_ms:  # a kept-back instance's timer is due
            return self._on_due(route, tob)
        out = self._hand(route.routes, tob)
        self._check_watched(route)
        return out

    def _hand(self, steps: list[Step], tob: TopOfBook) -> tuple[list[OrderIntent], list[DeadLetter]]:
        intents: list[OrderIntent] = []
        dropped: list[DeadLetter] = []
        for _, handlers, gated in steps:
            for handler in handlers:
                found = handler(tob)
                if found:
                    intents += found
            if gated is not None:
                ready, lost = gated.gate.on_book(tob)  # type: ignore[union-attr]
                if ready or lost:
                    bot_ids = (gated.bot_id,)
                    self._catch_up(bot_ids)
                    self._dispatch(gated.bot_id, gated.signals(ready, lost), intents, dropped)
                    self._recheck(bot_ids)
        return intents, dropped

    def _check_watched(self, route: BookRoute) -> None:
        for bot in route.watched:
            if not bot.wants_tops():
                self._invalidate()  # it can do without tops from now on
                break

    def _on_due(self, route: BookRoute, tob: TopOfBook) -> tuple[list[OrderIntent], list[DeadLetter]]:
        """A top at or after the route's due time (a kept-back instance's timer: Bots 9 and 10's reload
        timers): the market's kept-back instances whose timer is due catch up on it and take the top
        in their router's place (before its gate) through `_fire`, as every top would have fired
        their timer; the others stay kept back (the top is in the backlog: their clocks stay before
        their timers), as do the gates (no timer of theirs). This market's backlog decides who is
        due: another market's newest top is older than its own route's due time, so older than any
        timer of an instance kept there. The due time then follows the timers (`_after_timers`)."""
        backlog = route.backlog
        assert backlog is not None  # a due time comes from a kept-back instance
        fired: list[Bot] = []
        steps = route.routes
        later = NEVER  # the earliest timer of the others
        tops, newest_ms = backlog.tops, backlog.newest_ms
        for bot_id, bot in backlog.bots:
            timer = self._next_timer(bot)
            if timer > newest_ms and timer > bot.clock_ms:  # not due: caught up later, as the others
                if timer < later:
                    later = timer
                continue
            bot.catch_up(tops, newest_ms)
            fired.append(bot)
            if steps is route.routes:
                steps = list(steps)
            order = self._order[bot_id]  # before its router's step, as `Router.route` orders a gate
            at = 0
            while at < len(steps) and steps[at][0] < order:
                at += 1
            steps.insert(at, (order, [self._fire(bot)], None))
        out = self._hand(steps, tob)
        self._after_timers(route, fired, later)
        self._check_watched(route)
        return out

    def _fire(self, bot: Bot) -> BookHandler:
        """The handler of a due kept-back instance at a top of its market (caught up on it, so its book
        and clock are the top's): its timer fires, as `Bot.on_top_of_book` fires it. While it still
        does without tops (`wants_tops`, every timer ahead) that is all: the top would change nothing,
        and the other markets' tops stay kept back (the timer read no book of theirs: `wants_tops`).
        Otherwise it catches up on every market before it evaluates the top (Bot 9 values what it
        holds at the mids of their books), and `_after_timers` builds the routes again."""

        def fire(tob: TopOfBook) -> list[OrderIntent]:
            timers = bot.on_timer(bot.clock_ms)
            if not bot.wants_tops() and self._next_timer(bot) > bot.clock_ms:
                return timers
            for backlog in self._backlogs:
                backlog.catch_up_instances([bot])
            intents = bot.after_timer(tob)
            return timers + intents if timers else intents

        return fire

    @staticmethod
    def _next_timer(bot: Bot) -> int:
        """The instance's earliest timer (NEVER: none)."""
        due = NEVER
        for part in bot.timed_parts():
            timer = part.next_timer_ms
            if timer is not None and timer < due:
                due = timer
        return due

    def _route_of(self, tob: TopOfBook) -> BookRoute:
        """The route of the tops of `tob`'s market (every consumer caught up, `tob` handed to all)."""
        route = BookRoute()
        backlog = Backlog()
        for router in self.routers.values():
            handlers: list[BookHandler] = []
            for key, _ in router.route_keys(tob):
                bot = self.instances[key]
                if type(bot).skips_tops:
                    wants, timers = self._wanted[key] = self._wants(bot)
                    if not wants and all(timer > bot.clock_ms for timer in timers):
                        if tob.asset_id in bot.token_market:  # else its tops change nothing there
                            backlog.bots.append((router.bot_id, bot))
                            self._kept_keys[id(bot)] = key
                            route.due_ms = min([route.due_ms, *timers])
                        continue
                    route.watched.append(bot)
                handlers.append(bot.on_top_of_book)
            gate = router.gate
            gated: Router | None = None
            if gate is not None:
                self._waiting[router.bot_id] = bool(gate.waiting)
                if gate.waiting:
                    gated = router
                else:
                    backlog.gates.append((router.bot_id, gate))
            if handlers or gated is not None:
                route.routes.append((self._order[router.bot_id], handlers, gated))
        if backlog.bots or backlog.gates:
            route.backlog = backlog
            self._backlogs.append(backlog)
            self._kept_bots.update(bot_id for bot_id, _ in backlog.bots)
            self._kept_bots.update(bot_id for bot_id, _ in backlog.gates)
        return route

    def _after_timers(self, route: BookRoute, fired: list[Bot], later: int) -> None:
        """After a top at the route's due time: the routes stand while the instances whose timers fired
        on it (`fired`) still do without tops (else they are built again), and the route's due time
        moves to its kept-back instances' earliest timer. The other routes keep theirs: a bot-wide
        instance's timer that moved later leaves them due early, never late, and their next top at
        that time finds nobody due and moves it on (the timers of an instance kept back elsewhere move
        only when it is handed something: `_recheck` builds the routes again then). The other
        kept-back consumers were handed nothing that changes what they want or their timers (a
        catch-up sets books and the clock only, and leaves the clock before every timer), and a gate
        in a backlog has no signal waiting (a signal is an event: `_recheck` rebuilds the routes)."""
        if not self._routes:  # a gate's release rebuilt them meanwhile
            return
        wanted, keys = self._wanted, self._kept_keys
        due = later  # (the timers of the market's other kept-back instances)
        for bot in fired:
            wants, timers = wanted[keys[id(bot)]] = self._wants(bot)
            for timer in timers:
                if timer <= bot.clock_ms:
                    wants = True
                elif timer < due:
                    due = timer
            if wants:
                self._invalidate()
                return
        route.due_ms = due

    @staticmethod
    def _wants(bot: Bot) -> tuple[bool, tuple[int, ...]]:
        """What a route is built on for an instance: it wants tops, and its timers."""
        timers = tuple(part.next_timer_ms for part in bot.timed_parts() if part.next_timer_ms is not None)
        return bot.wants_tops(), timers

    def _catch_up(self, bot_ids: Container[str] | None) -> None:
        for backlog in self._backlogs:
            backlog.catch_up(bot_ids)

    def _recheck(self, bot_ids: Iterable[str]) -> None:
        """After these bots were handed something: rebuild the routes when one of their instances or
        gates now wants the tops it was kept from, or can do without those it gets."""
        if not self._routes:
            return
        for bot_id in bot_ids:
            if bot_id not in self._selective:
                continue
            router = self.routers[bot_id]
            gate = router.gate
            waiting = self._waiting.get(bot_id)
            if gate is not None and waiting is not None and waiting != bool(gate.waiting):
                self._invalidate()
                return
            for key in router.keys:
                full = router._full(key)
                wanted = self._wanted.get(full)
                if wanted is not None and wanted != self._wants(self.instances[full]):
                    self._invalidate()
                    return

    def _invalidate(self) -> None:
        """Routes may move (a MarketInfo: a market joining a neg-risk event; a new instance; a consumer
        that wants tops again or no longer): every consumer kept back catches up and the routes are
        built again, top by top. The cached path skips `Router.route`, so the routers forget the tops
        they held for `same_top`: the loop has filtered every top they are handed since."""
        self._catch_up(None)
        self._backlogs = []
        self._kept_bots.clear()
        self._routes.clear()
        self._wanted.clear()
        self._waiting.clear()
        self._kept_keys.clear()
        for router in self.routers.values():
            router.tops.clear()

    def on_event(self, event: BotEvent) -> tuple[list[OrderIntent], list[DeadLetter]]:
        kind = type(event)  # (an exact type is a pointer compare, isinstance a call when compiled)
        if kind is MarketInfo:
            self._invalidate()
        targets = fan_out(event, self.routers, self.readers)
        kept = self._kept_bots
        if kept:
            if kind is TopOfBook:
                self._catch_up(None)
            else:
                for bot_id in targets:
                    if bot_id in kept:
                        self._catch_up(targets)
                        break
        intents: list[OrderIntent] = []
        dropped: list[DeadLetter] = []
        for bot_id in targets:
            self._dispatch(bot_id, self.routers[bot_id].route(event), intents, dropped)
        if kind is not TopOfBook:
            self._recheck(targets)
        return intents, dropped

    def _dispatch(
        self,
        bot_id: str,
        routed: list[tuple[str, BotEvent | DeadLetter]],
        intents: list[OrderIntent],
        dropped: list[DeadLetter],
    ) -> None:
        for key, item in routed:
            if key == DROPPED:
                dropped.append(item)  # type: ignore[arg-type]
                continue
            instance = self.instances.get(key)
            if instance is None:
                cls, bot = self.classes[bot_id], self.configs[bot_id]
                instance = self.instances[key] = new_instance(cls, bot, self.config)
                self._invalidate()  # a new instance: the cached routes miss it
            intents += dispatch(instance, item)  # type: ignore[arg-type]
