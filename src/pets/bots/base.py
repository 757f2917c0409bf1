"""The Bot base: a plain state machine from market events to order intents (no I/O, no wall clock).

A strategy subclasses `Bot` and implements the hooks it needs (`_on_book`, `_on_market`, `_on_fill`,
`_on_order_gone`, `_on_timer`, `_on_halt`, and `_on_signal` for the signal sources it names in
`signal_sources`: the callers hand it only those, after the SignalGate); the public handlers below
keep the bookkeeping every bot shares: the markets and latest books it has seen, its own orders
(pending until acknowledged, live, gone), its inventory from fills and settlements, its run state
from operator commands and risk denials, and deterministic client order ids. Time is the venue time
of the events (`clock_ms`); timers fire when an event's time passes them, so a replay produces the
same intents as the live run.

The same class runs in the Bytewax bots flow (one instance per routing key, see bots/operator.py)
and in the single-process `pets run` loop (one instance for everything).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Final, Literal

from msgspec.structs import replace
from mypy_extensions import mypyc_attr

from pets.native import attributes
from pets.risk.state import BotState, Status, TradingState, bot_status_after, portfolio_status_after
from pets.risk.zones import check_zone
from pets.schemas.config import BotConfig, VenueConfig, ZoneFramework
from pets.schemas.control import ALL_BOTS, ControlCommand
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import (
    ExecutionReport,
    IntentCause,
    OrderDenied,
    OrderIntent,
    OrderType,
    Side,
    StrategyType,
    make_client_order_id,
)
from pets.schemas.signals import NewsAttention, Signal, SignalSource, WalletFill, WhaleRanking
from pets.venue.precision import SIZE_STEP, fee_rate, passive_price, round_size

ZERO = Decimal(0)
PORTFOLIO_COMMANDS = frozenset({"halt", "resume_trading"})  # with bot "*": the whole portfolio
Routing = Literal["market", "neg_risk_event", "bot"]
DataTopic = Literal["chain.fill", "whale.rankings", "features.news"]
# Denials that say "not now" for every order of the bot: it stops proposing for a while instead of
# sending intents that would all be refused.
BLOCKING_RULES: dict[str, int] = {
    "halted": 60_000,
    "bot_paused": 60_000,
    "bot_stopped": 60_000,
    "bot_halted": 60_000,
    "rate_limit": 1_000,
}
# Refusals for want of room (the order does not fit a cap at any size the venue takes): the room comes
# back with a fill, a cancel or a move of the market, not with the next top, so new buys of that token
# wait this long (a tail-risk quote re-proposed on every top was refused 229 times over a replay).
CAPACITY_RULES = frozenset({"position_size", "allocation", "bot_exposure", "category_exposure", "leverage"})
CAPACITY_BACKOFF_MS = 30_000


# the frozen configuration is attached again after a restore (`bind`), not stored in snapshots
UNPICKLED = frozenset({"config", "venue", "params", "zones", "zone_verdicts"})
# enum members as plain constants: a class attribute of an Enum costs a slow lookup per top of book
RUNNING: Final = BotState.RUNNING
PAUSED: Final = BotState.PAUSED
HALTED: Final = TradingState.HALTED


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class OwnOrder:
    client_order_id: str
    market: str
    asset_id: str
    side: Side
    price: Decimal
    size: Decimal
    order_type: OrderType
    created_ms: int
    group_id: str | None = None
    replaces: str | None = None
    filled: Decimal = ZERO
    live: bool = False  # acknowledged by the venue
    cancelling: bool = False

    @property
    def leaves(self) -> Decimal:
        return self.size - self.filled


def yes_no(info: MarketInfo) -> tuple[str, str] | None:
    """(YES token, NO token) of a binary market, None for any other market."""
    if len(info.token_ids) != 2:
        return None
    a, b = info.token_ids
    if [o.lower() for o in info.outcomes] == ["no", "yes"]:
        return b, a
    return a, b


@mypyc_attr(allow_interpreted_subclasses=True)
class Bot:
    strategy_type: ClassVar[StrategyType]
    routing: ClassVar[Routing] = "market"  # what the Bytewax operator keys this bot's instances by
    signal_sources: ClassVar[tuple[SignalSource, ...]] = ()  # the signal.* topics this bot reads
    data_topics: ClassVar[tuple[DataTopic, ...]] = ()  # chain.fill, whale.rankings, features.news
    # True: `wants_tops` can say no, and the embedded loop then keeps tops from the instance (routing.py);
    # such a class keeps `on_top_of_book` and `timed_parts` as they are here (routing.py fires a kept-back
    # instance's due timer itself, `on_timer` then `after_timer`)
    skips_tops: ClassVar[bool] = False

    def __init__(self, config: BotConfig, venue: VenueConfig, id_namespace: str | None = None) -> None:
        self.bot_id = config.id
        self.id_namespace = id_namespace or config.id
        self.markets: dict[str, MarketInfo] = {}  # condition id -> market
        self.token_market: dict[str, MarketInfo] = {}  # token id -> market
        self.pairs: dict[str, tuple[str, str] | None] = {}  # condition id -> (YES, NO) of a binary market
        self.books: dict[str, TopOfBook] = {}  # token id -> latest top of book
        self.orders: dict[str, OwnOrder] = {}
        self.inventory: dict[str, Decimal] = {}  # token id -> shares held
        self.clock_ms = 0
        self.next_timer_ms: int | None = None
        self.status = Status(BotState.RUNNING)  # operator commands for this bot (risk's state machine)
        self.trading = Status(TradingState.ACTIVE)  # portfolio-wide: `halt *` / `resume_trading`
        self.blocked_until_ms = 0
        self.refused_until_ms: dict[str, int] = {}  # token id -> no new buy before (CAPACITY_RULES)
        self.seq = 0  # where every key's numbering starts (a snapshot from before `seqs` kept one count)
        self.seqs: dict[str, int] = {}
        self.bind(config, venue)

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        """(Re)attach the frozen configuration (after a restore from a recovery snapshot too)."""
        self.config = config
        self.venue = venue
        self.zones: ZoneFramework | None = None
        self.zone_verdicts: dict[tuple[str, Decimal], bool] = {}
        if getattr(self, "seqs", None) is None:  # restored from a snapshot from before per-key numbering
            self.seqs = {}
        if getattr(self, "refused_until_ms", None) is None:  # a snapshot from before the capacity back-off
            self.refused_until_ms = {}

    def use_zones(self, zones: ZoneFramework) -> None:
        """The zone rules risk applies (zone_framework.yaml): `zone_allows` checks buys against them,
        so the bot does not propose what risk must refuse. Attached like the config, not snapshotted."""
        self.zones = zones
        self.zone_verdicts = {}

    def zone_allows(
        self, price: Decimal, strategy_type: StrategyType | None = None, probability: Decimal | None = None
    ) -> bool:
        """Risk's zone rule would let this bot buy at `price` (its zone strategy for `strategy_type`,
        the bot's own type by default; `probability`: the estimated win probability a directional
        order would carry, which zone 3 asks for)."""
        zones = self.zones
        if zones is None:
            return True
        kind = strategy_type or self.strategy_type
        if probability is not None:
            strategy = self.config.zone_strategy(kind, zones)
            return strategy is not None and check_zone(price, strategy, probability, zones) is None
        verdict = self.zone_verdicts.get((kind, price))
        if verdict is None:
            strategy = self.config.zone_strategy(kind, zones)
            verdict = strategy is not None and check_zone(price, strategy, None, zones) is None
            self.zone_verdicts[(kind, price)] = verdict
        return verdict

    @property
    def bound(self) -> bool:
        """False right after a restore from a recovery snapshot, which does not carry the config."""
        return hasattr(self, "config")

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in attributes(self).items() if k not in UNPICKLED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    # ------------------------------------------------------------------ public handlers

    def on_market(self, info: MarketInfo) -> list[OrderIntent]:
        if self.config.categories and info.category not in self.config.categories:
            return []
        self.markets[info.condition_id] = info
        self.pairs[info.condition_id] = yes_no(info)
        for token in info.token_ids:
            self.token_market[token] = info
        if info.closed or info.winning_asset_id is not None:
            for order in [o for o in self.orders.values() if o.market == info.condition_id]:
                del self.orders[order.client_order_id]
            if info.winning_asset_id is not None or info.closed:
                for token in info.token_ids:
                    self.inventory.pop(token, None)  # settled by the venue
        return self._gate(self._on_market(info))

    def on_top_of_book(self, tob: TopOfBook) -> list[OrderIntent]:
        asset_id = tob.asset_id
        if asset_id not in self.token_market:
            return []
        self.books[asset_id] = tob
        # the hot path: one call per top of book, so the clock and timer check are inlined
        now = tob.ts_ms
        if now > self.clock_ms:
            self.clock_ms = now
        else:
            now = self.clock_ms
        timer = self.next_timer_ms
        if timer is None or now < timer:
            intents = self._on_book(tob)
            return self._gate(intents) if intents else intents
        timers = self.on_timer(now)
        intents = self._on_book(tob)
        if intents:
            intents = self._gate(intents)
        return timers + intents if timers else intents

    def wants_tops(self) -> bool:
        """False while a top of book would change nothing here but `books` and the clock: `_on_book`
        would return nothing and change nothing, for any of the instance's tokens (its timers the
        caller watches: `next_timer_ms`), and a timer that fires reads no book of a market other than
        the top's. Only read for classes with `skips_tops`; the caller then hands the instance the tops
        it kept back (`catch_up`) before anything else."""
        return True

    def after_timer(self, tob: TopOfBook) -> list[OrderIntent]:
        """The rest of `on_top_of_book` once `on_timer` fired on `tob` (its book and clock already
        set): the routing fires a kept-back instance's due timer itself and hands it the top only when
        the timer left it wanting tops (routing.py, `BotInstances._fire`)."""
        intents = self._on_book(tob)
        return self._gate(intents) if intents else intents

    def catch_up(self, tops: dict[str, TopOfBook], newest_ms: int) -> None:
        """What the tops of one market kept back while `wants_tops` said no would have done: the latest
        one per token in `books`, the clock at the newest (nothing for a market the bot was not told of)."""
        token_market = self.token_market
        books = self.books
        for asset_id, tob in tops.items():
            if asset_id not in token_market:
                return  # a market's tokens are known together: not this bot's market
            books[asset_id] = tob
        if newest_ms > self.clock_ms:
            self.clock_ms = newest_ms

    def on_execution_report(self, report: ExecutionReport) -> list[OrderIntent]:
        """Own reports only (the caller routes by bot id)."""
        order = self.orders.get(report.client_order_id)
        if order is None:
            self._untracked(report)
            return []
        timers = self._advance(report.source_ts_ms)
        if report.last_qty > 0:
            order.filled += report.last_qty
            self._hold(report)
        if report.kind == "ack":
            order.live = True
        out = timers
        if report.last_qty > 0:
            out += self._gate(self._on_fill(order, report))
        if report.final:
            del self.orders[order.client_order_id]
            out += self._gate(self._on_order_gone(order, report.reason or report.kind))
        return out

    def on_signal(self, signal: Signal) -> list[OrderIntent]:
        """A signal of one of `signal_sources`, already past the SignalGate (new, unexpired, its
        market's book fresh). The bot's clock stays the venue's: signals do not move it. An order
        it causes that names no cause gets this signal (with the probability the order carries)."""
        intents = self._on_signal(signal)
        for i, intent in enumerate(intents):
            if intent.cause is None and intent.action != "cancel":
                intents[i] = replace(intent, cause=self.cause_of(signal, intent.probability))
        return self._gate(intents)

    def on_wallet_fill(self, fill: WalletFill) -> list[OrderIntent]:
        """A fill of a tracked whale wallet (chain.fill), for a bot with "chain.fill" in `data_topics`."""
        return self._gate(self._on_wallet_fill(fill))

    def on_whale_ranking(self, ranking: WhaleRanking) -> list[OrderIntent]:
        """A row of the whale ranking (whale.rankings), for a bot with "whale.rankings" in `data_topics`."""
        return self._gate(self._on_whale_ranking(ranking))

    def on_news_attention(self, features: NewsAttention) -> list[OrderIntent]:
        """A market's attention features (features.news), for a bot with "features.news" in `data_topics`."""
        return self._gate(self._on_news_attention(features))

    def owns(self, client_order_id: str) -> bool:
        """An order id this bot (this instance's namespace) made, tracked or not."""
        return client_order_id.startswith(f"{self.id_namespace}-")

    def _untracked(self, report: ExecutionReport) -> None:
        """A report of one of our orders we no longer track: the venue's word wins. An ack is an order
        the live executor reported rejected (every post unanswered, state unknown) and adopted later: it
        is tracked again. A fill counts in the inventory whatever ended the order here."""
        if not self.owns(report.client_order_id):
            return
        if report.kind == "ack" and report.leaves_qty > 0:
            self.orders[report.client_order_id] = OwnOrder(
                report.client_order_id, report.market, report.asset_id, report.side, report.order_price,
                report.order_size, "GTC", self.clock_ms, filled=report.order_size - report.leaves_qty,
                live=True,
            )  # fmt: skip
        elif report.last_qty > 0:
            self._hold(report)

    def _hold(self, fill: ExecutionReport) -> None:
        """The inventory after a fill."""
        signed = fill.last_qty if fill.side == "BUY" else -fill.last_qty
        self.inventory[fill.asset_id] = self.inventory.get(fill.asset_id, ZERO) + signed

    def on_order_denied(self, denied: OrderDenied) -> list[OrderIntent]:
        """Risk refused one of our intents: forget the order; back off on a bot-wide refusal."""
        intent = denied.intent
        if denied.rule == "duplicate":
            return []  # the first decision on that id stands
        if denied.rule == "bot_halted" and self.status.state == RUNNING:
            # risk halted this bot (its drawdown breaker) and lifts it only on an operator's start or
            # resume, which reaches the bot as well: hold still until then (retrying every minute
            # told risk 1,379 times over a 14-day replay)
            self.status = Status(BotState.HALTED, denied.reason)
        backoff = BLOCKING_RULES.get(denied.rule)
        if backoff is not None:
            self.blocked_until_ms = max(self.blocked_until_ms, self.clock_ms + backoff)
        elif denied.rule in CAPACITY_RULES and intent.side == "BUY" and intent.group_id is None:
            self.refused_until_ms[intent.asset_id] = self.clock_ms + CAPACITY_BACKOFF_MS
        order = self.orders.pop(intent.client_order_id, None)
        if order is None:
            return []
        replaced = self.orders.get(order.replaces) if order.replaces else None
        if replaced is not None:
            replaced.cancelling = False  # the replace never reached the venue: the old order still rests
        return self._gate(self._on_order_gone(order, f"denied: {denied.reason}"))

    def on_control(self, cmd: ControlCommand) -> list[OrderIntent]:
        """Operator commands, with the risk engine's own transitions (pets.risk.state). Risk cancels
        the resting orders of a stopped bot itself (its cancel reports reach us); we stop proposing."""
        if cmd.bot_id == ALL_BOTS and cmd.command in PORTFOLIO_COMMANDS:
            self.trading = portfolio_status_after(self.trading, cmd)
        elif cmd.applies_to(self.bot_id):
            self.status = bot_status_after(self.status, cmd)
        else:
            return []
        if self.operating:
            self.blocked_until_ms = 0
        else:
            self._on_halt()
        return []

    def timed_parts(self) -> tuple[Bot, ...]:
        """The bots whose `next_timer_ms` a caller driving timers from the venue clock watches (it calls
        `on_timer` of the part that is due; a bot composed of legs lists them)."""
        return (self,)

    def on_timer(self, now_ms: int) -> list[OrderIntent]:
        self.next_timer_ms = None
        self.clock_ms = max(self.clock_ms, now_ms)
        return self._gate(self._on_timer(now_ms))

    # ------------------------------------------------------------------ strategy hooks

    def _on_market(self, info: MarketInfo) -> list[OrderIntent]:
        return []

    def _on_book(self, tob: TopOfBook) -> list[OrderIntent]:
        return []

    def _on_fill(self, order: OwnOrder, report: ExecutionReport) -> list[OrderIntent]:
        return []

    def _on_order_gone(self, order: OwnOrder, why: str) -> list[OrderIntent]:
        return []

    def _on_timer(self, now_ms: int) -> list[OrderIntent]:
        return []

    def _on_signal(self, signal: Signal) -> list[OrderIntent]:
        return []

    def _on_wallet_fill(self, fill: WalletFill) -> list[OrderIntent]:
        return []

    def _on_whale_ranking(self, ranking: WhaleRanking) -> list[OrderIntent]:
        return []

    def _on_news_attention(self, features: NewsAttention) -> list[OrderIntent]:
        return []

    def _on_halt(self) -> None:
        """Forget local plans when an operator stops the bot."""

    # ------------------------------------------------------------------ helpers for strategies

    @property
    def operating(self) -> bool:
        """Not stopped, paused or halted by an operator (a timed pause ends by itself)."""
        status = self.status
        if status.state == PAUSED and status.expired(self.clock_ms * 1_000_000):
            status = self.status = Status(RUNNING, "pause ended")
        return status.state == RUNNING and self.trading.state != HALTED

    @property
    def active(self) -> bool:
        """Operating and not holding off after a refusal: free to propose new orders."""
        return self.operating and self.clock_ms >= self.blocked_until_ms

    def tradable(self, info: MarketInfo) -> bool:
        return info.active and info.accepting_orders and not info.closed

    def fresh_book(self, asset_id: str) -> TopOfBook | None:
        tob = self.books.get(asset_id)
        return tob if tob is not None and not tob.stale else None

    def held(self, asset_id: str) -> Decimal:
        return self.inventory.get(asset_id, ZERO)

    def tick_of(self, asset_id: str) -> Decimal:
        tob = self.books.get(asset_id)
        return tob.tick_size if tob is not None else self.token_market[asset_id].tick_size

    def fee_rate(self, info: MarketInfo) -> Decimal:
        return fee_rate(self.venue, info.category, info.fee_rate)

    @staticmethod
    def cause_of(signal: Signal, probability: Decimal | None = None, note: str = "") -> IntentCause:
        """What made the bot act on `signal`, for `place(..., cause=...)` (the probability it used:
        the signal's unless the bot derived its own)."""
        return IntentCause(
            source=signal.source,
            signal_id=signal.signal_id,
            model_version=signal.model_version,
            probability=probability if probability is not None else signal.probability,
            note=note,
        )

    def schedule(self, at_ms: int) -> None:
        """Ask for `on_timer` once the venue clock reaches `at_ms` (the earliest request wins)."""
        if self.next_timer_ms is None or at_ms < self.next_timer_ms:
            self.next_timer_ms = at_ms

    def place(
        self,
        asset_id: str,
        side: Side,
        price: Decimal,
        size: Decimal,
        *,
        order_type: OrderType = "GTC",
        post_only: bool = False,
        strategy_type: StrategyType | None = None,
        probability: Decimal | None = None,
        group_id: str | None = None,
        replaces: str | None = None,
        passive: bool = True,
        cause: IntentCause | None = None,
    ) -> OrderIntent | None:
        """A new order on the venue grid (price rounded toward safety when `passive`, size down to
        0.01); None when it rounds to nothing or no tradable price is as safe as `price`. The order is
        tracked as pending until its ack; None too for a buy of a token risk just found no room for
        (CAPACITY_RULES)."""
        if side == "BUY" and group_id is None and self.refused_until_ms.get(asset_id, 0) > self.clock_ms:
            return None
        info = self.token_market[asset_id]
        tick = self.tick_of(asset_id)
        if passive:
            safe = passive_price(side, price, tick)
            if safe is None:
                return None
            price = safe
        size = round_size(size)
        if size < SIZE_STEP:
            return None
        intent = self._intent(
            "replace" if replaces else "place", info, asset_id, side, price, size,
            order_type=order_type, post_only=post_only, strategy_type=strategy_type, probability=probability,
            group_id=group_id, replaces=replaces, tick=tick, cause=cause,
        )  # fmt: skip
        self.orders[intent.client_order_id] = OwnOrder(
            intent.client_order_id, info.condition_id, asset_id, side, price, size, order_type, self.clock_ms,
            group_id, replaces,
        )  # fmt: skip
        if replaces is not None and replaces in self.orders:
            self.orders[replaces].cancelling = True
        return intent

    def cancel(self, order: OwnOrder) -> OrderIntent | None:
        if order.cancelling:
            return None
        order.cancelling = True
        info = self.token_market[order.asset_id]
        return self._intent(
            "cancel", info, order.asset_id, order.side, order.price, order.leaves,
            replaces=order.client_order_id, tick=self.tick_of(order.asset_id),
        )  # fmt: skip

    def new_group_id(self, key: str) -> str:
        return f"{self.id_namespace}-{key}-g{self.next_seq(key)}"

    def next_seq(self, key: str) -> int:
        """Order numbers count per market (or basket key), so an instance spanning markets numbers
        its orders alike whatever order the markets' events reach it in (the flows interleave
        markets differently from `pets run`; docs/running.md)."""
        seq = self.seqs.get(key, self.seq) + 1
        self.seqs[key] = seq
        return seq

    # ------------------------------------------------------------------ internals

    def _intent(
        self,
        action: Literal["place", "replace", "cancel"],
        info: MarketInfo,
        asset_id: str,
        side: Side,
        price: Decimal,
        size: Decimal,
        *,
        tick: Decimal,
        order_type: OrderType = "GTC",
        post_only: bool = False,
        strategy_type: StrategyType | None = None,
        probability: Decimal | None = None,
        group_id: str | None = None,
        replaces: str | None = None,
        cause: IntentCause | None = None,
    ) -> OrderIntent:
        return OrderIntent(
            client_order_id=make_client_order_id(
                self.id_namespace, info.condition_id, asset_id, side, self.next_seq(info.condition_id)
            ),
            bot_id=self.bot_id,
            strategy_type=strategy_type or self.strategy_type,
            action=action,
            market=info.condition_id,
            asset_id=asset_id,
            side=side,
            price=price,
            size=size,
            order_type=order_type,
            post_only=post_only,
            tick_size=tick,
            min_order_size=info.min_order_size,
            neg_risk=info.neg_risk,
            category=info.category,
            probability=probability,
            group_id=group_id,
            replaces=replaces,
            source_ts_ms=self.clock_ms,
            created_ns=self.clock_ms * 1_000_000,
            cause=cause,
        )

    def _advance(self, now_ms: int) -> list[OrderIntent]:
        if now_ms > self.clock_ms:
            self.clock_ms = now_ms
        if self.next_timer_ms is not None and self.clock_ms >= self.next_timer_ms:
            return self.on_timer(self.clock_ms)
        return []

    def _gate(self, intents: list[OrderIntent]) -> list[OrderIntent]:
        """Drop new orders while stopped, paused or backing off after a refusal; cancels always pass,
        and so do sells while the bot is only backing off (risk lets position-reducing orders through)."""
        if not intents or self.active:
            return intents
        kept = []
        for intent in intents:
            if intent.action == "cancel" or (intent.side == "SELL" and self.operating):
                kept.append(intent)
                continue
            order = self.orders.pop(intent.client_order_id, None)
            replaced = self.orders.get(order.replaces) if order is not None and order.replaces else None
            if replaced is not None:
                replaced.cancelling = False
        return kept
