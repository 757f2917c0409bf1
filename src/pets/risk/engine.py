"""RiskEngine: the gate every order passes, holding the whole portfolio's risk state.

One instance sees every intent, execution report, control command and top of book, so shared limits
(cash, per-category exposure) are exact: the risk flow runs it under ONE global key (docs/risk.md).
Every handler takes the event's own time (venue milliseconds of the frame behind it), never the wall
clock, so a replay decides exactly as the live run did.

Order of checks for a new order (the first failure is the denial; sizing checks may only reduce):
duplicate id -> bot known/enabled -> portfolio state -> bot state -> rate limit -> market open ->
tick grid -> amount precision -> minimum size -> post-only -> book fresh -> (sell) inventory |
(buy) zone -> Kelly -> position size -> allocation -> per-bot cap -> per-category cap -> leverage.
Cancels are never refused (except as duplicates): they only reduce risk.
The legs of an arbitrage basket (group_id + group_size) are held until the last one arrives, then
pass these checks together, or are all denied (risk/baskets.py).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from mypy_extensions import mypyc_attr

from pets.native import attributes
from pets.risk import circuit_breakers as cb
from pets.risk import limits, venue_rules
from pets.risk.baskets import PendingBasket, check_leg, check_waiting, incomplete, leg_denied
from pets.risk.denial import Denial
from pets.risk.duplicates import RecentIds, check_duplicate
from pets.risk.kelly import kelly_fraction, kelly_stake, share_cost
from pets.risk.ledger import ZERO, ClosedTrip, Ledger, OpenOrder
from pets.risk.rate_limit import RateWindow, check_rate
from pets.risk.staleness import check_book
from pets.risk.state import (
    PAUSED,
    RUNNING,
    BotState,
    Status,
    TradingState,
    bot_status_after,
    check_bot,
    check_portfolio,
    portfolio_status_after,
)
from pets.risk.trips import won
from pets.risk.zones import check_zone
from pets.schemas.config import DEFAULT_FEE_CATEGORY, BotConfig, PetsConfig
from pets.schemas.control import ALL_BOTS, AlertKind, ControlCommand, RiskAlert, Severity
from pets.schemas.market_data import MarketInfo, TopOfBook, mark_price
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderDenied, OrderIntent
from pets.venue.precision import fee_rate

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
SIZED_BY_KELLY = frozenset({"directional", "tail_risk"})
# commands that take a bot out of trading: its resting orders are cancelled
STOPPING = frozenset({"stop", "pause", "halt"})

Output = RiskAlert | ApprovedOrder | OrderDenied
Verdict = ApprovedOrder | OrderDenied
# attributes `bind` derives from the config: not part of the recovered state
DERIVED = (
    "config",
    "capital",
    "bot_configs",
    "zones",
    "zone_strategies",
    "bot_cap",
    "category_cap",
    "gross_cap",
    "bot_limits",
    "portfolio_keep",
    "daily_keep",
)


@mypyc_attr(allow_interpreted_subclasses=True)
class RiskEngine:
    def __init__(self, config: PetsConfig) -> None:
        trading = config.system.trading
        self.ledger = Ledger(
            trading.starting_capital,
            {bot.id: bot.capital_allocation * trading.starting_capital for bot in config.bots},
        )
        self.clock_ns = 0
        self.sequence = 0
        self.portfolio = Status(TradingState.ACTIVE)
        self.portfolio_peak = trading.starting_capital
        self.day = -1
        self.day_start_equity = trading.starting_capital
        self.bot_status: dict[str, Status] = {}
        self.rates: dict[str, RateWindow] = {}
        self.books: dict[str, TopOfBook] = {}
        self.markets: dict[str, MarketInfo] = {}  # by condition id
        self.token_market: dict[str, MarketInfo] = {}  # by token id
        self.settled: set[str] = set()
        self.decided = RecentIds()  # client order ids of every intent decided
        self.done_orders = RecentIds()  # approved orders that reached a terminal report
        self.reports_seen = RecentIds()
        self.early_reports: dict[str, list[ExecutionReport]] = {}
        self.baskets: dict[str, PendingBasket] = {}  # group id -> legs waiting for the others
        self.decided_groups = RecentIds()
        self.outbox: list[Output] = []
        self.alerts = 0
        self.waiting: list[OrderIntent] = []  # intents for tokens without a top of book yet (`waits`)
        self.bind(config)

    # ------------------------------------------------------------------ configuration

    def bind(self, config: PetsConfig) -> None:
        """(Re)attach the configuration; the recovered state is pickled without it."""
        self.config = config
        if getattr(self, "waiting", None) is None:  # restored from a snapshot from before `waits`
            self.waiting = []
        self.capital = config.system.trading.starting_capital
        self.bot_configs: dict[str, BotConfig] = {bot.id: bot for bot in config.bots}
        self.zones = config.zones
        # bot -> order strategy_type -> the bot's zone strategy judging it (config zone_strategies)
        self.zone_strategies: dict[str, dict[str, str]] = {
            bot.id: {
                spec.type.value: spec.name
                for spec in config.zones.strategies
                if bot.zone_strategy(spec.type, config.zones) == spec.name
            }
            for bot in config.bots
        }
        risk = config.risk
        self.bot_cap = risk.limits.max_bot_allocation * self.capital
        self.category_cap = risk.limits.max_category_exposure * self.capital
        self.gross_cap = risk.leverage.max_gross_leverage * self.capital
        breakers = risk.circuit_breakers
        # breakers trip at equity <= peak x keep (keep = 1 - drawdown limit); daily: the bot's max loss
        self.bot_limits: dict[str, tuple[Decimal, Decimal | None]] = {
            bot.id: (1 - (bot.risk.drawdown_halt or breakers.bot_drawdown_halt), bot.risk.max_daily_loss_usdc)
            for bot in config.bots
        }
        self.portfolio_keep = 1 - breakers.portfolio_drawdown_emergency
        self.daily_keep = 1 - risk.limits.daily_loss_halt

    @property
    def bound(self) -> bool:
        """False right after a restore from a snapshot (which does not carry the config)."""
        return hasattr(self, "config")

    def __getstate__(self) -> dict[str, Any]:
        state = attributes(self)
        for derived in DERIVED:
            state.pop(derived, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # snapshots taken before baskets were held whole have no pending legs
        state = {"baskets": {}, "decided_groups": RecentIds(), **state}
        for name, value in state.items():
            setattr(self, name, value)

    # ------------------------------------------------------------------ events

    def on_market(self, info: MarketInfo) -> list[Output]:
        """Learn a market (tick size, minimum, category, neg-risk group); settle it once it resolves."""
        self.markets[info.condition_id] = info
        for token in info.token_ids:
            self.token_market[token] = info
        payouts = info.payouts()
        if payouts is None or info.condition_id in self.settled:
            return self.flush()
        self.settled.add(info.condition_id)
        for order in self.ledger.drop_orders(info.condition_id):
            self.done_orders.add(order.client_order_id, self.clock_ns)
        self._after_trips(self.ledger.settle(payouts))
        self._check_drawdowns(set(self.ledger.bots))
        return self.flush()

    def on_top_of_book(self, tob: TopOfBook) -> list[Output]:
        """One call per top of book: a dictionary update unless a bot holds the token and its mid moved.
        The caller hands on no top that `same_top` ignores (the loop and the risk flow drop them)."""
        now_ns = tob.ts_ms * NS_PER_MS
        if now_ns > self.clock_ns:
            self._advance(now_ns)
        self.books[tob.asset_id] = tob
        mark = mark_price(tob, self.ledger.marks.get(tob.asset_id))
        if mark is not None:
            moved = self.ledger.mark(tob.asset_id, mark)
            if moved:
                self._check_drawdowns(moved)
        return self.flush() if self.outbox else []

    def on_intent(self, intent: OrderIntent, now_ns: int) -> list[Output]:
        """The intent's verdict, or none while its basket waits for legs and then every leg's verdict
        (in leg order); after what moving the clock produced (alerts, denials of expired baskets)."""
        self._advance(now_ns)
        before = self.flush()
        if intent.group_id is None or intent.group_size is None:
            verdicts: list[Verdict] = [self._decide_one(intent)]
        else:
            verdicts = self._on_leg(intent, intent.group_id, intent.group_size)
        return [*before, *verdicts, *self.flush()]

    def waits(self, intent: OrderIntent) -> bool:
        """Whether the intent is for a known token this engine has no top of book of yet: it then
        waits for that top (`released`) instead of a `stale_book` denial. The risk flow reads order.intent and
        md.tob as they arrive, so a flow that starts lagging can see an intent before the first top
        it was priced from; `pets run` hands risk every top before the intents priced off it, and
        the verdict is the same (docs/running.md). A later top overtaken by its intent changes no
        verdict: the staleness check only refuses books older than the intent's pricing time."""
        if intent.asset_id in self.books or intent.asset_id not in self.token_market:
            return False  # a top to judge it by, or a market it cannot trade (decided now)
        self.waiting.append(intent)
        return True

    def released(self, tob: TopOfBook) -> list[OrderIntent]:
        """A top of book arrived: the waiting intents for its token, in arrival order."""
        if not self.waiting or tob.asset_id not in self.books:
            return []
        ready = [i for i in self.waiting if i.asset_id == tob.asset_id]
        self.waiting = [i for i in self.waiting if i.asset_id != tob.asset_id]
        return ready

    def on_execution_report(self, report: ExecutionReport) -> list[Output]:
        self._advance(report.source_ts_ms * NS_PER_MS)
        if report.report_id in self.reports_seen:
            return self.flush()
        order = self.ledger.orders.get(report.client_order_id)
        if order is None:
            if report.client_order_id in self.done_orders:
                self._after_close(report)
            elif report.kind != "ack":
                # a report for an approval this engine has not registered yet (replayed after a restart)
                self.early_reports.setdefault(report.client_order_id, []).append(report)
            return self.flush()
        self.reports_seen.add(report.report_id, self.clock_ns)
        self._apply_report(order, report)
        return self.flush()

    def _after_close(self, report: ExecutionReport) -> None:
        """A report for an order this engine already closed: the venue's word wins. An ack is an order
        the live executor reported rejected (every post unanswered, state unknown) and adopted later: it
        rests again and holds its reservation. A fill is a position, whatever closed the order here
        (a fill racing a cancel, or one of such an adopted order)."""
        if report.kind == "ack" and report.leaves_qty > 0:
            self.reports_seen.add(report.report_id, self.clock_ns)
            self.ledger.open(self._open_order(report, report.leaves_qty))
        elif report.kind in ("partial_fill", "fill") and report.last_qty > 0:
            self.reports_seen.add(report.report_id, self.clock_ns)
            self._apply_report(self._open_order(report, ZERO), report)

    def on_control(self, cmd: ControlCommand) -> list[Output]:
        """Operator commands; `halt *` cancels every open order, stopping a bot cancels its orders."""
        if cmd.bot_id == ALL_BOTS and cmd.command in ("halt", "resume_trading"):
            self.portfolio = portfolio_status_after(self.portfolio, cmd)
            if cmd.command == "resume_trading":  # the operator accepted the losses so far
                self.portfolio_peak = self.day_start_equity = self.ledger.equity
            kind: AlertKind = "emergency_halt" if cmd.command == "halt" else "resumed"
            self._alert(
                kind,
                ALL_BOTS,
                f"operator_{cmd.command}",
                self.portfolio.reason,
                "critical" if cmd.command == "halt" else "info",
            )
            if cmd.command == "halt":
                self._cancel_all(ALL_BOTS)
        else:
            targets = sorted(self.bot_configs) if cmd.bot_id == ALL_BOTS else [cmd.bot_id]
            for bot_id in targets:
                status = bot_status_after(self.status(bot_id), cmd)
                self.bot_status[bot_id] = status
                if cmd.command in STOPPING:
                    self._cancel_all(bot_id)
                if cmd.command in ("start", "resume") and status.state == BotState.RUNNING:
                    book = self.ledger.bot(bot_id)
                    book.consecutive_losses = 0
                    book.peak = book.equity  # the operator accepted the drawdown so far
                    self._alert("resumed", bot_id, f"operator_{cmd.command}", status.reason, "info")
        return self.flush()

    def flush(self) -> list[Output]:
        """Alerts and risk-made orders (cancel-alls) produced since the last call."""
        out, self.outbox = self.outbox, []
        return out

    # ------------------------------------------------------------------ restart support

    def replay_decision(self, decision: ApprovedOrder | OrderDenied) -> None:
        """Apply a decision already published before a crash (found on order.exec / order.denied) as if
        it had been taken now, without publishing it again."""
        intent = decision.intent
        if intent.group_id is not None and intent.group_size is not None:
            # its basket was decided whole: the legs held in the snapshot are not waiting any more
            self.baskets.pop(intent.group_id, None)
            self.decided_groups.add(intent.group_id, self.clock_ns)
        if intent.client_order_id in self.decided:
            return
        self.decided.add(intent.client_order_id, self.clock_ns)
        if isinstance(decision, ApprovedOrder):
            self.sequence = max(self.sequence, decision.sequence)
            if intent.action in ("place", "replace"):
                self.rates.setdefault(intent.bot_id, RateWindow()).record(intent.source_ts_ms * NS_PER_MS)
            self._register(decision)

    # ------------------------------------------------------------------ views

    def status(self, bot_id: str) -> Status:
        status = self.bot_status.get(bot_id)
        if status is None:
            status = self.bot_status[bot_id] = Status(BotState.RUNNING)
        return status

    @property
    def state(self) -> TradingState:
        return TradingState(self.portfolio.state)

    def snapshot(self) -> dict[str, Any]:
        """Portfolio and per-bot risk state (for `pets bot list` and the database)."""
        ledger = self.ledger
        bots = {}
        for bot_id in sorted(set(self.bot_configs) | set(ledger.bots)):
            book = ledger.bot(bot_id)
            status = self.status(bot_id)
            config = self.bot_configs.get(bot_id)
            bots[bot_id] = {
                "state": status.state if config is None or config.enabled else "DISABLED",
                "reason": status.reason,
                "until_ns": status.until_ns,
                "exposure": str(book.exposure),
                "equity": str(book.equity),
                "realized_pnl": str(book.realized),
                "drawdown": str(cb.drawdown(book.peak, book.equity)),
                "consecutive_losses": book.consecutive_losses,
                "open_orders": sum(1 for o in ledger.orders.values() if o.bot_id == bot_id),
            }
        return {
            "state": self.portfolio.state,
            "reason": self.portfolio.reason,
            "until_ns": self.portfolio.until_ns,
            "cash": str(ledger.cash),
            "reserved": str(ledger.reserved),
            "equity": str(ledger.equity),
            "gross_exposure": str(ledger.gross),
            "drawdown": str(cb.drawdown(self.portfolio_peak, ledger.equity)),
            "bots": bots,
        }

    # ------------------------------------------------------------------ decisions

    def _decide_one(self, intent: OrderIntent) -> Verdict:
        verdict = self._decide(intent)
        self.decided.add(intent.client_order_id, self.clock_ns)
        if isinstance(verdict, Denial):
            return self._denied(intent, verdict)
        approved = self._approve(intent, verdict)
        self._register(approved)
        return approved

    def _on_leg(self, intent: OrderIntent, group_id: str, group_size: int) -> list[Verdict]:
        """Hold a basket's leg; decide the basket once its last leg arrived."""
        basket = self.baskets.get(group_id)
        denial = check_duplicate(intent.client_order_id, self.decided) or check_waiting(
            intent.client_order_id, basket
        )
        if denial:  # a re-delivery: the first delivery's verdict stands
            return [self._denied(intent, denial)]
        denial = check_leg(intent, basket, self.decided_groups)
        if denial:
            self.decided.add(intent.client_order_id, self.clock_ns)
            return [self._denied(intent, denial)]
        if basket is None:
            basket = self.baskets[group_id] = PendingBasket(group_id, group_size, self.clock_ns)
        basket.legs.append(intent)
        if not basket.complete:
            return []
        del self.baskets[group_id]
        self.decided_groups.add(group_id, self.clock_ns)
        verdicts = self._decide_basket(basket)
        for leg in basket.legs:
            self.decided.add(leg.client_order_id, self.clock_ns)
        return verdicts

    def _decide_basket(self, basket: PendingBasket) -> list[Verdict]:
        """Every leg approved, each checked with the legs before it reserved; or every leg denied with
        the first failure, the trial reservations, rate records and sequence numbers taken back."""
        sequence = self.sequence
        approved: list[ApprovedOrder] = []
        for leg in basket.legs:
            verdict = self._decide(leg)
            if isinstance(verdict, Denial):
                for order in reversed(approved):
                    self._take_back(order)
                self.sequence = sequence
                denial = leg_denied(basket.group_id, leg.client_order_id, verdict)
                return [self._denied(other, denial) for other in basket.legs]
            order = self._approve(leg, verdict)
            self._reserve(order)
            approved.append(order)
        for order in approved:
            self._apply_early_reports(order)
        return list(approved)

    def _take_back(self, approved: ApprovedOrder) -> None:
        intent = approved.intent
        if intent.action in ("place", "replace"):
            self.rates[intent.bot_id].take_back()
            order = self.ledger.orders[intent.client_order_id]
            self.ledger.release(order, order.remaining)

    def _denied(self, intent: OrderIntent, denial: Denial) -> OrderDenied:
        return OrderDenied(intent=intent, rule=denial.rule, reason=denial.reason, denied_ns=self.clock_ns)

    def _decide(self, intent: OrderIntent) -> Decimal | Denial:
        """The approved size, or why not."""
        denial = check_duplicate(intent.client_order_id, self.decided)
        if denial:
            return denial
        if intent.action in ("cancel", "cancel_all"):
            return intent.size
        bot = self.bot_configs.get(intent.bot_id)
        if bot is None:
            return Denial("unknown_bot", f"{intent.bot_id} is not a configured bot")
        if not bot.enabled:
            return Denial("bot_stopped", f"{bot.id} is disabled in its config")
        reducing = intent.side == "SELL"
        status = self.status(bot.id)
        denial = check_portfolio(self.portfolio, reducing) or check_bot(bot.id, status, reducing)
        if denial:
            return denial
        limits_ = self.config.risk.limits
        rate = self.rates.get(bot.id)
        if rate is None:
            rate = self.rates[bot.id] = RateWindow()
        denial = check_rate(
            rate,
            intent.source_ts_ms * NS_PER_MS,  # the bot's own time: the engine clock only moves forward
            bot.risk.max_orders_per_second or limits_.max_orders_per_second,
            bot.risk.max_orders_per_minute or limits_.max_orders_per_minute,
        )
        if denial:
            return denial
        market = self.markets.get(intent.market)
        if market is not None and (market.closed or not market.accepting_orders):
            return Denial("market_closed", f"market {intent.market} is not accepting orders")
        tob = self.books.get(intent.asset_id)
        tick = tob.tick_size if tob is not None else market.tick_size if market else intent.tick_size
        min_shares = market.min_order_size if market is not None else intent.min_order_size
        venue = self.config.system.venue
        denial = (
            venue_rules.check_tick(intent.price, tick)
            or venue_rules.check_precision(intent.side, intent.price, intent.size, tick)
            or venue_rules.check_min_size(
                intent.size, intent.price, intent.order_type, min_shares, venue.min_marketable_usdc
            )
            or venue_rules.check_post_only(intent.strategy_type, intent.post_only, intent.order_type)
            or check_book(intent.asset_id, tob, intent.source_ts_ms, limits_.stale_book_max_age_ms)
        )
        if denial:
            return denial
        book = self.ledger.bot(bot.id)
        if reducing:
            held = book.held(intent.asset_id)
            replaced = self.ledger.orders.get(intent.replaces) if intent.replaces is not None else None
            if (
                replaced is not None
                and replaced.bot_id == bot.id
                and replaced.side == "SELL"
                and replaced.asset_id == intent.asset_id
            ):
                held += replaced.remaining  # the replace cancels it: its shares are offered once, not twice
            return limits.check_inventory(intent.asset_id, intent.size, held) or intent.size
        return self._size_buy(intent, bot, market, min_shares)

    def _size_buy(
        self, intent: OrderIntent, bot: BotConfig, market: MarketInfo | None, min_shares: Decimal
    ) -> Decimal | Denial:
        strategy = self.zone_strategies[bot.id].get(intent.strategy_type)
        if strategy is None:
            return Denial("zone", f"{bot.id} names no zone strategy for {intent.strategy_type} orders")
        denial = check_zone(
            intent.price, strategy, intent.probability, self.zones, basket=intent.group_id is not None
        )
        if denial:
            return denial
        price, size = intent.price, intent.size
        book = self.ledger.bot(bot.id)
        venue = self.config.system.venue
        category = market.category if market is not None else intent.category
        rate = fee_rate(venue, category, market.fee_rate if market is not None else None)
        if intent.strategy_type in SIZED_BY_KELLY:
            if intent.probability is not None:
                kelly = self.config.risk.kelly
                fraction = kelly_fraction(
                    bot.risk.kelly_fraction or kelly.default_fraction,
                    kelly.min_fraction,
                    book.consecutive_losses,
                )
                # priced at the limit: the worst average price a walk of the book can fill this order at
                stake = kelly_stake(
                    intent.probability, price, rate, book.equity, fraction,
                    book.holding_qty(intent.asset_id), intent.post_only,
                )  # fmt: skip
                if isinstance(stake, Denial):
                    return stake
                size = min(size, stake.shares)
            elif intent.strategy_type == "directional":
                return Denial("kelly", "a directional order needs the bot's win probability for Kelly sizing")
        marketable = intent.order_type in venue_rules.MARKETABLE_TYPES
        min_size = (
            Decimal(math.ceil(venue.min_marketable_usdc / price * 100)) / 100 if marketable else min_shares
        )
        if size < min_size:
            return Denial("kelly", f"Kelly size {size} is below the minimum order of {min_size} shares")
        reducible = intent.group_id is None
        # the one cost of an order that every cap measures: price + the worst-case taker fee per share
        unit_cost = share_cost(price, rate, intent.post_only)
        ledger = self.ledger
        in_market = held_in_market = book.market_cost.get(intent.market, ZERO)
        exposure, in_category = book.exposure, ledger.categories.get(category, ZERO)
        cash, gross = ledger.available_cash, ledger.gross
        replaced = ledger.orders.get(intent.replaces) if intent.replaces is not None else None
        if replaced is not None and replaced.bot_id == bot.id and replaced.side == "BUY":
            # the replace cancels that bid: its reservation (released on its cancel report) is counted
            # once, not beside the new bid's
            freed = replaced.remaining * replaced.unit_reserve
            exposure, cash, gross = exposure - freed, cash + freed, gross - freed
            in_market -= freed if replaced.market == intent.market else ZERO
            in_category -= freed if replaced.category == category else ZERO
        # each limit fits the order's own size (the smallest fit wins); the first denial ends the checks
        fits = (
            lambda: limits.check_position_size(
                intent.market,
                size,
                unit_cost,
                in_market,
                bot.min_position_usdc,
                bot.max_position_usdc,
                min_size,
                reducible,
                opening=reducible and held_in_market == 0,  # a moved quote opens nothing
            ),
            lambda: limits.check_allocation(
                bot.id, size, unit_cost, exposure, book.budget, min_size, reducible
            ),
            lambda: limits.check_bot_exposure(
                bot.id, size, unit_cost, exposure, self.bot_cap, min_size, reducible
            ),
            lambda: limits.check_category_exposure(
                category, size, unit_cost, in_category, self.category_cap, min_size, reducible
            ),
            lambda: limits.check_leverage(size, unit_cost, cash, gross, self.gross_cap, min_size, reducible),
        )
        fitted_size = size
        for fit in fits:
            fitted = fit()
            if isinstance(fitted, Denial):
                return fitted
            fitted_size = min(fitted_size, fitted)
        size = fitted_size
        if reducible and held_in_market == 0 and size * unit_cost < bot.min_position_usdc:
            return Denial(
                "position_size",
                f"market {intent.market}: new position {size * unit_cost:.2f} (reduced by the "
                f"limits) below the minimum {bot.min_position_usdc}",
            )
        return size

    def _approve(self, intent: OrderIntent, size: Decimal) -> ApprovedOrder:
        self.sequence += 1
        if intent.action in ("place", "replace"):
            self.rates.setdefault(intent.bot_id, RateWindow()).record(intent.source_ts_ms * NS_PER_MS)
        return ApprovedOrder(intent=intent, size=size, approved_ns=self.clock_ns, sequence=self.sequence)

    def _register(self, approved: ApprovedOrder) -> None:
        """Reserve cash/inventory for an approved order and apply reports that arrived before it."""
        self._reserve(approved)
        self._apply_early_reports(approved)

    def _reserve(self, approved: ApprovedOrder) -> None:
        intent = approved.intent
        if intent.action in ("place", "replace"):
            self.ledger.open(self._open_order(intent, approved.size, intent.post_only, intent.category))

    def _open_order(
        self,
        order: OrderIntent | ExecutionReport,
        remaining: Decimal,
        post_only: bool = False,  # unknown (a report): reserve for the worst case, a taker fee
        category: str = DEFAULT_FEE_CATEGORY,
    ) -> OpenOrder:
        market = self.markets.get(order.market)
        category = market.category if market is not None else category
        price = order.price if isinstance(order, OrderIntent) else order.order_price
        rate = fee_rate(self.config.system.venue, category, market.fee_rate if market is not None else None)
        event_key = (market.neg_risk_market_id or market.condition_id) if market is not None else order.market
        return OpenOrder(
            client_order_id=order.client_order_id,
            bot_id=order.bot_id,
            market=order.market,
            asset_id=order.asset_id,
            side=order.side,
            price=price,
            remaining=remaining,
            unit_reserve=share_cost(price, rate, post_only),
            category=category,
            event_key=event_key,
        )

    def _apply_early_reports(self, approved: ApprovedOrder) -> None:
        for report in self.early_reports.pop(approved.intent.client_order_id, []):
            self.outbox.extend(self.on_execution_report(report))  # kept for the caller's flush

    # ------------------------------------------------------------------ reports, breakers

    def _apply_report(self, order: OpenOrder, report: ExecutionReport) -> None:
        trip: ClosedTrip | None = None
        if report.kind in ("partial_fill", "fill") and report.last_qty > 0:
            px = report.last_px if report.last_px is not None else order.price
            trip = self.ledger.fill(order, report.last_qty, px, report.fee, report.rebate)
        if report.final:
            if order.client_order_id in self.ledger.orders:
                self.ledger.release(order, order.remaining)
            self.done_orders.add(order.client_order_id, self.clock_ns)
        if trip is not None:
            self._after_trips([trip])
        if report.kind in ("partial_fill", "fill"):
            self._check_drawdowns({order.bot_id})

    def _after_trips(self, trips: list[ClosedTrip]) -> None:
        breakers = self.config.risk.circuit_breakers
        for trip in trips:
            book = self.ledger.bot(trip.bot_id)  # the trip is counted in book.trips already
            book.consecutive_losses = 0 if won(trip.pnl) else book.consecutive_losses + 1
            bot = self.bot_configs.get(trip.bot_id)
            limit = (bot.risk.consecutive_losses if bot else None) or breakers.consecutive_losses
            reason = cb.consecutive_losses_tripped(book.consecutive_losses, limit)
            if reason and self.status(trip.bot_id).state == BotState.RUNNING:
                until = self.clock_ns + breakers.cooldown_s * NS_PER_S
                self.bot_status[trip.bot_id] = Status(BotState.PAUSED, reason, until)
                self._alert(
                    "circuit_breaker",
                    trip.bot_id,
                    "consecutive_losses",
                    f"{reason}: paused",
                    "warning",
                    until,
                )
                self._cancel_all(trip.bot_id)

    def _check_drawdowns(self, bot_ids: set[str] | frozenset[str]) -> None:
        """Bot drawdown and daily-loss breakers of `bot_ids`, then the portfolio's. Runs on every book
        update of a held token, so the no-trip case is a few comparisons."""
        breakers = self.config.risk.circuit_breakers
        for bot_id in bot_ids if len(bot_ids) == 1 else sorted(bot_ids):
            book = self.ledger.bot(bot_id)
            equity = book.equity
            if equity >= book.peak:
                book.peak = equity  # at a peak: no drawdown, and no loss since the day's start
                continue
            keep, daily_max = self.bot_limits.get(bot_id, (1 - breakers.bot_drawdown_halt, None))
            if equity > book.peak * keep and (daily_max is None or book.day_start_pnl - book.pnl < daily_max):
                continue
            status = self.status(bot_id)
            if status.state in (BotState.HALTED, BotState.STOPPED):
                continue
            bot = self.bot_configs.get(bot_id)
            limit = (bot.risk.drawdown_halt if bot else None) or breakers.bot_drawdown_halt
            reason = cb.drawdown_tripped(bot_id, book.peak, equity, limit)
            if reason:
                self.bot_status[bot_id] = Status(BotState.HALTED, reason)
                self._alert("bot_drawdown_halt", bot_id, "bot_drawdown", f"{reason}: bot halted", "critical")
                self._cancel_all(bot_id)
                continue
            daily = cb.bot_daily_loss_tripped(
                bot_id, book.day_start_pnl, book.pnl, bot.risk.max_daily_loss_usdc if bot else None
            )
            if daily and status.state == BotState.RUNNING:
                until = cb.next_utc_midnight_ns(self.clock_ns)
                self.bot_status[bot_id] = Status(BotState.PAUSED, daily, until)
                self._alert(
                    "circuit_breaker",
                    bot_id,
                    "bot_daily_loss",
                    f"{daily}: paused until the next UTC day",
                    "warning",
                    until,
                )
                self._cancel_all(bot_id)
        self._check_portfolio()

    def _check_portfolio(self) -> None:
        state = self.portfolio.state
        if state == TradingState.HALTED:
            return
        equity = self.ledger.equity
        if equity >= self.portfolio_peak:
            self.portfolio_peak = equity
            return
        if equity > self.portfolio_peak * self.portfolio_keep and (
            state == TradingState.REDUCING or equity > self.day_start_equity * self.daily_keep
        ):
            return
        breakers = self.config.risk.circuit_breakers
        reason = cb.drawdown_tripped(
            "portfolio", self.portfolio_peak, equity, breakers.portfolio_drawdown_emergency
        )
        if reason:
            self.portfolio = Status(TradingState.HALTED, reason)
            self._alert(
                "emergency_halt", ALL_BOTS, "portfolio_drawdown", f"{reason}: emergency halt", "critical"
            )
            self._cancel_all(ALL_BOTS)
            return
        if self.portfolio.state == TradingState.REDUCING:
            return
        daily = cb.daily_loss_tripped(self.day_start_equity, equity, self.config.risk.limits.daily_loss_halt)
        if daily:
            until = cb.next_utc_midnight_ns(self.clock_ns)
            self.portfolio = Status(TradingState.REDUCING, daily, until)
            self._alert(
                "daily_loss_halt",
                ALL_BOTS,
                "daily_loss",
                f"{daily}: no new exposure until the next UTC day",
                "critical",
                until,
            )
            self._cancel_all(ALL_BOTS)

    def _advance(self, now_ns: int) -> None:
        """Move the engine clock forward; a new UTC day resets the daily limits, timed states expire."""
        if now_ns <= self.clock_ns:
            return
        self.clock_ns = now_ns
        day = now_ns // cb.DAY_NS  # cb.utc_day, inlined: this runs for every new venue millisecond
        if day != self.day:
            self.day = day
            self.day_start_equity = self.ledger.equity
            for book in self.ledger.bots.values():
                book.day_start_pnl = book.pnl
        if self.portfolio.until_ns is not None and self.portfolio.expired(now_ns):
            self.portfolio = Status(TradingState.ACTIVE, "daily loss halt ended (new UTC day)")
            self._alert("resumed", ALL_BOTS, "daily_loss", self.portfolio.reason, "info")
        for bot_id, status in self.bot_status.items():
            if status.state == PAUSED and status.expired(now_ns):
                self.bot_status[bot_id] = Status(RUNNING, "pause ended")
                self.ledger.bot(bot_id).consecutive_losses = 0
                self._alert("resumed", bot_id, "pause_ended", f"{bot_id}: pause ended", "info")
        if self.baskets:
            self._expire_baskets(now_ns)

    def _expire_baskets(self, now_ns: int) -> None:
        """Deny the baskets whose legs did not all arrive within the stale-book age."""
        max_wait_ms = self.config.risk.limits.stale_book_max_age_ms
        for basket in [b for b in self.baskets.values() if b.expired(now_ns, max_wait_ms)]:
            del self.baskets[basket.group_id]
            self.decided_groups.add(basket.group_id, now_ns)
            denial = incomplete(basket, max_wait_ms)
            for leg in basket.legs:
                self.decided.add(leg.client_order_id, now_ns)
                self.outbox.append(self._denied(leg, denial))

    def _alert(
        self,
        kind: AlertKind,
        bot_id: str,
        rule: str,
        message: str,
        severity: Severity,
        until_ns: int | None = None,
    ) -> None:
        self.alerts += 1
        self.outbox.append(
            RiskAlert(
                alert_id=f"risk-alert-{self.alerts}",
                kind=kind,
                bot_id=bot_id,
                rule=rule,
                message=message,
                severity=severity,
                ts_ns=self.clock_ns,
                until_ns=until_ns,
            )
        )

    def _cancel_all(self, bot_id: str) -> None:
        """An approved cancel-all (bot "*" = every bot) for the executor; the cancel reports it causes
        release the reservations."""
        self.sequence += 1
        intent = OrderIntent(
            client_order_id=f"risk-cancel-all-{self.sequence}",
            bot_id=bot_id,
            strategy_type="arbitrage",
            action="cancel_all",
            market="*",
            asset_id="*",
            side="SELL",
            price=ZERO,
            size=ZERO,
            source_ts_ms=self.clock_ns // NS_PER_MS,
            created_ns=self.clock_ns,
        )
        self.decided.add(intent.client_order_id, self.clock_ns)
        self.outbox.append(
            ApprovedOrder(intent=intent, size=ZERO, approved_ns=self.clock_ns, sequence=self.sequence)
        )
