"""Bot 5, Market Making: post-only quotes on both sides of calm binary markets.

Per market, the quoted token is the first outcome (YES). Fair price = microprice (mid when the book
has no sizes) shifted against inventory (inventory_skew_per_share per share held, YES minus NO), and
the quotes sit half_spread either side, rounded away from the fair price onto the tick grid and
never crossing the book (post-only would be rejected). The ask side sells held YES when there is
enough, otherwise it bids for NO at 1 - ask (the same exposure without inventory). A side is not
quoted when inventory would pass max_inventory_shares, nor a bid the zone rules refuse market making
(`Bot.zone_allows`: zone 5, 0.80 and up, in zone_framework.yaml).

Risk decides every order, but a quote it would refuse for want of room costs a round trip, so the bot
checks the room it can see first: it keeps its positions at cost (from its own fills, fees included,
sold at average cost, as risk counts them), sizes a buy quote within the market's max_position_usdc
counting the quote it replaces, and after an "allocation" refusal proposes no new buy until its own
exposure (positions at cost + resting buys) fell below what it was then.

Quotes are pulled (cancelled) when the book is stale, when the stdev of the mid over
volatility_window_s exceeds max_volatility, and when the bot is stopped. They are replaced when the
fair price moved at least requote_min_move_ticks ticks, at most once per requote_interval_ms; a quote
that filled or vanished is renewed by the timer after requote_interval_ms.

Every top of book of a quoted token runs `_on_book`, so that path avoids Decimal arithmetic where it
only estimates: the volatility window keeps the mids as integer micro-units (exact sums, so the
stdev test is exact too); order prices and sizes stay exact Decimals.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from mypy_extensions import mypyc_attr

from pets.bots.base import ZERO, Bot, OwnOrder
from pets.schemas.config import BotConfig, MarketMakingParams, TailRiskMmParams, VenueConfig
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ExecutionReport, OrderDenied, OrderIntent, Side
from pets.venue.precision import passive_price, round_size
from pets.venue.units import MID_SCALE, MID_UNITS, mid_units

ONE = Decimal(1)
# refusals because money or tokens are committed elsewhere: they last until fills or cancels free them
RESERVATION_RULES = frozenset(
    {"allocation", "bot_exposure", "category_exposure", "leverage", "position_size", "inventory"}
)
COMPACT_AFTER = 1024  # expired window entries kept before the arrays are shifted
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
RESERVATION_BACKOFF_MS = 30_000  # wait before quoting a market again after such a refusal of a new quote


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class MarketQuotes:
    yes: str
    no: str
    bid_id: str | None = None
    ask_id: str | None = None
    fair: Decimal | None = None
    quoted_ms: int = -(10**18)
    # the volatility window: (ts_ms - ts_base, mid in micro-units) from index `first` on, as two int32
    # arrays (a mid is at most MID_SCALE; 8 bytes an entry) rather than a deque of tuples, because the
    # flow pickles this state at every epoch close and commits it to its recovery store (~15 ms per MB)
    mid_ts: array[int] = field(default_factory=lambda: array("i"))
    mid_values: array[int] = field(default_factory=lambda: array("i"))
    first: int = 0
    mid_sum: int = 0
    mid_sq_sum: int = 0
    ts_base: int = 0  # ms; mid_ts is re-based when a time leaves int32 (24.8 days) from it

    def __getstate__(self) -> dict[str, Any]:
        """The window's live entries only: the arrays keep the expired head until it outgrows the rest
        (up to as many entries again), which every epoch close would pickle and commit."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        first = self.first
        state.update(mid_ts=self.mid_ts[first:], mid_values=self.mid_values[first:], first=0)
        return state

    def __setstate__(self, state: Any) -> None:
        """A snapshot (attributes, or pickle's (None, slots) of an interpreted class); one taken before
        `ts_base` holds absolute int64 times, which are offsets from 0."""
        attrs: dict[str, Any] = state[1] if isinstance(state, tuple) else state
        self.ts_base = 0
        for name, value in attrs.items():
            setattr(self, name, value)

    @property
    def window_size(self) -> int:
        return len(self.mid_ts) - self.first

    def add_mid(self, ts_ms: int, mid: int, window_ms: int) -> None:
        at = ts_ms - self.ts_base
        if not INT32_MIN <= at <= INT32_MAX and self.mid_ts.typecode == "i":
            self._rebase(ts_ms)
            at = ts_ms - self.ts_base
        times, values = self.mid_ts, self.mid_values
        times.append(at)
        values.append(mid)
        self.mid_sum += mid
        self.mid_sq_sum += mid * mid
        cutoff = at - window_ms
        first = self.first
        while times[first] <= cutoff:
            old = values[first]
            self.mid_sum -= old
            self.mid_sq_sum -= old * old
            first += 1
        self.first = first
        if first > COMPACT_AFTER and first * 2 > len(times):  # drop the expired head now and then
            if times.typecode == "i":
                del times[:first], values[:first]
                self.first = 0
            else:
                self._rebase(ts_ms)

    def _rebase(self, ts_ms: int) -> None:
        """The window from `first` on, its times as int32 offsets from `ts_ms` when they all fit, else
        as absolute int64 ms (a clock that went back 24.8 days or more; a snapshot from before
        `ts_base`): the same entries at the same times, so the same decisions."""
        times = [self.ts_base + t for t in self.mid_ts[self.first :]]
        fits = all(INT32_MIN <= t - ts_ms <= INT32_MAX for t in times)
        self.ts_base = ts_ms if fits else 0
        self.mid_ts = array("i" if fits else "q", [t - self.ts_base for t in times])
        self.mid_values = self.mid_values[self.first :]
        self.first = 0

    def too_volatile(self, limit: tuple[int, int]) -> bool:
        """stdev of the mids in the window > max_volatility = num / den, compared exactly in integers:
        (n S2 - S1^2) / (n MID_SCALE)^2 > (num / den)^2, `limit` = (num^2 MID_SCALE^2, den^2)."""
        n = self.window_size
        scaled_max, den_sq = limit
        return (n * self.mid_sq_sum - self.mid_sum * self.mid_sum) * den_sq > scaled_max * n * n


def volatility_limit(max_volatility: Decimal) -> tuple[int, int]:
    num, den = max_volatility.as_integer_ratio()
    return num * num * MID_SCALE * MID_SCALE, den * den


@mypyc_attr(allow_interpreted_subclasses=True)
class MarketMaker(Bot):
    strategy_type = "market_making"
    routing = "market"

    def __init__(self, config: BotConfig, venue: VenueConfig, id_namespace: str | None = None) -> None:
        super().__init__(config, venue, id_namespace)
        self.quotes: dict[str, MarketQuotes] = {}
        self.due: dict[str, int] = {}  # market -> when its deferred requote is due
        self.cost: dict[str, Decimal] = {}  # token -> what the held shares cost (risk's "at cost")
        self.full_at: Decimal | None = None  # own exposure at the last "allocation" refusal

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        super().bind(config, venue)
        params = config.params
        self.params: MarketMakingParams = (
            params.market_making
            if isinstance(params, TailRiskMmParams)
            else config.params_as(MarketMakingParams)
        )
        self.window_ms = self.params.volatility_window_s * 1000
        self.volatility_limit = volatility_limit(self.params.max_volatility)

    # ------------------------------------------------------------------ hooks

    def _on_market(self, info: MarketInfo) -> list[OrderIntent]:
        tokens = self.pairs.get(info.condition_id)
        if tokens is None:
            return []
        quotes = self.quotes.get(info.condition_id)
        if quotes is None:
            self.quotes[info.condition_id] = MarketQuotes(*tokens)
            return []
        if info.closed or info.winning_asset_id is not None:
            for token in info.token_ids:
                self.cost.pop(token, None)  # settled with the inventory
        if not self.tradable(info):
            return self._pull(quotes)
        return []

    def _on_book(self, tob: TopOfBook) -> list[OrderIntent]:
        quotes = self.quotes.get(tob.market)
        if quotes is None or tob.asset_id != quotes.yes:
            return []
        mid = tob.mid
        if mid is not None:
            units = MID_UNITS.get(mid)
            quotes.add_mid(tob.ts_ms, mid_units(mid) if units is None else units, self.window_ms)
        return self._requote(tob.market, quotes)

    def _on_fill(self, order: OwnOrder, report: ExecutionReport) -> list[OrderIntent]:
        token, qty = report.asset_id, report.last_qty
        cost = self.cost.get(token, ZERO)
        if report.side == "BUY":
            self.cost[token] = cost + qty * (report.last_px or order.price) + report.fee - report.rebate
        else:  # the inventory already shrank by qty: take out the average cost of what was sold
            before = self.held(token) + qty
            self.cost[token] = cost - cost * qty / before if before > 0 else ZERO
        self._defer(order.market, self.clock_ms + self.params.requote_interval_ms)
        return []

    def _on_order_gone(self, order: OwnOrder, why: str) -> list[OrderIntent]:
        quotes = self.quotes.get(order.market)
        if quotes is None:
            return []
        # a refused replacement leaves the order it was to replace resting: keep quoting with that one
        survivor = order.replaces if order.replaces in self.orders else None
        if quotes.bid_id == order.client_order_id:
            quotes.bid_id = survivor
        if quotes.ask_id == order.client_order_id:
            quotes.ask_id = survivor
        self._defer(order.market, self.clock_ms + self.params.requote_interval_ms)
        return []

    def on_order_denied(self, denied: OrderDenied) -> list[OrderIntent]:
        """A quote refused because money or tokens are committed: a refused replace (the old quote still
        holds its reservation) becomes a cancel of the old quote, so the requote after it is a fresh
        order with the room the cancel frees; a refused new quote waits RESERVATION_BACKOFF_MS."""
        out = super().on_order_denied(denied)
        intent = denied.intent
        if denied.rule == "allocation":
            self.full_at = self._exposure()
        if denied.rule not in RESERVATION_RULES or intent.market not in self.quotes:
            return out
        old = self.orders.get(intent.replaces or "")
        if intent.action == "replace" and old is not None:
            cancel = self.cancel(old)
            if cancel is not None:
                out.append(cancel)
        elif intent.action == "place":
            self.due[intent.market] = self.clock_ms + RESERVATION_BACKOFF_MS
            self.schedule(self.due[intent.market])
        return out

    def _on_timer(self, now_ms: int) -> list[OrderIntent]:
        out: list[OrderIntent] = []
        for market in sorted(m for m, at in self.due.items() if at <= now_ms):
            del self.due[market]
            out += self._requote(market, self.quotes[market])
        if self.due:
            self.schedule(min(self.due.values()))
        return out

    def _defer(self, market: str, at_ms: int) -> None:
        """Requote `market` once the venue clock reaches `at_ms`."""
        if at_ms < self.due.get(market, at_ms + 1):
            self.due[market] = at_ms
        self.schedule(at_ms)

    def _on_halt(self) -> None:
        for quotes in self.quotes.values():
            quotes.fair = None

    # ------------------------------------------------------------------ quoting

    def _requote(self, market: str, quotes: MarketQuotes) -> list[OrderIntent]:
        if not self.operating:
            return self._pull(quotes)
        if self.clock_ms < self.blocked_until_ms:
            return []  # backing off after a refusal (rate limit): keep the quotes, send nothing
        info = self.markets[market]
        tob = self.books.get(quotes.yes)
        if (
            not (info.active and info.accepting_orders)
            or info.closed
            or tob is None
            or tob.stale
            or tob.best_bid is None
            or tob.best_ask is None
            or quotes.too_volatile(self.volatility_limit)
        ):
            return self._pull(quotes)
        p = self.params
        deferred = self.due.get(market, 0)
        if self.clock_ms < deferred and deferred >= quotes.quoted_ms + p.requote_interval_ms:
            return []  # a requote is already due later, whatever the fair price is now
        tick = tob.tick_size
        held = self.inventory
        inventory = held.get(quotes.yes, ZERO) - held.get(quotes.no, ZERO)
        fair = (
            tob.microprice or tob.mid or (tob.best_bid + tob.best_ask) / 2
        ) - inventory * p.inventory_skew_per_share
        if (
            quotes.bid_id is not None
            and quotes.ask_id is not None
            and quotes.fair is not None
            and abs(fair - quotes.fair) < p.requote_min_move_ticks * tick
        ):
            return []
        due = max(quotes.quoted_ms + p.requote_interval_ms, deferred)
        if self.clock_ms < due:
            if due != deferred:  # else already due then (and the timer is set no later)
                self._defer(market, due)
            return []
        # None: the quote would sit beyond the last tick (no bid below `tick`, no ask above 1 - tick)
        passive_bid = passive_price("BUY", fair - p.half_spread, tick)
        passive_ask = passive_price("SELL", fair + p.half_spread, tick)
        bid = None if passive_bid is None else min(passive_bid, tob.best_ask - tick)
        ask = None if passive_ask is None else max(passive_ask, tob.best_bid + tick)
        size = max(p.quote_size_shares, info.min_order_size)
        quotes.fair = fair
        quotes.quoted_ms = self.clock_ms
        if self.full_at is not None and self._exposure() < self.full_at:
            self.full_at = None  # room freed since the "allocation" refusal
        out: list[OrderIntent] = []
        if inventory + size <= p.max_inventory_shares and bid is not None and tick <= bid:
            out += self._quote_side(quotes, "bid", quotes.yes, "BUY", bid, size)
        else:
            out += self._cancel_side(quotes, "bid")
        if -inventory + size <= p.max_inventory_shares and ask is not None and ask <= ONE - tick:
            if self.held(quotes.yes) >= size:
                out += self._quote_side(quotes, "ask", quotes.yes, "SELL", ask, size)
            else:
                no_price = ONE - ask
                no_tick = self.tick_of(quotes.no)
                no_book = self.books.get(quotes.no)
                if no_book is not None and no_book.best_ask is not None:
                    no_price = min(no_price, no_book.best_ask - no_tick)
                if no_price >= no_tick:
                    out += self._quote_side(quotes, "ask", quotes.no, "BUY", no_price, size)
                else:  # a NO bid would cross the NO book
                    out += self._cancel_side(quotes, "ask")
        else:
            out += self._cancel_side(quotes, "ask")
        return out

    def _quote_side(
        self, quotes: MarketQuotes, side_name: str, asset_id: str, side: Side, price: Decimal, size: Decimal
    ) -> list[OrderIntent]:
        if side == "BUY":
            # a buy quote is a position in the making: within [min_position_usdc, max_position_usdc]
            # of the market, counting what is held (at the quote prices) and the other side's buy
            if self.full_at is not None:
                return self._cancel_side(quotes, side_name)  # nothing freed since "allocation"
            room = self.config.max_position_usdc - self._committed(quotes, side_name, asset_id)
            size = min(size, round_size(room / price))
            too_small = size < self.token_market[asset_id].min_order_size
            if too_small or size * price < self.config.min_position_usdc:
                return self._cancel_side(quotes, side_name)
        current_id = quotes.bid_id if side_name == "bid" else quotes.ask_id
        current = self.orders.get(current_id) if current_id else None
        if (
            current is not None
            and current.asset_id == asset_id
            and current.price == price
            and not current.cancelling
        ):
            return []
        if side == "BUY" and not self.zone_allows(price):
            return self._cancel_side(quotes, side_name)  # risk would refuse it (e.g. a bid in zone 5)
        out: list[OrderIntent] = []
        replaces = None
        if current is not None and not current.cancelling:
            if current.asset_id == asset_id:
                replaces = current.client_order_id
            else:
                out += [i for i in (self.cancel(current),) if i is not None]
        intent = self.place(asset_id, side, price, size, post_only=True, replaces=replaces)
        new_id = intent.client_order_id if intent is not None else None
        if side_name == "bid":
            quotes.bid_id = new_id
        else:
            quotes.ask_id = new_id
        return out + ([intent] if intent is not None else [])

    def _committed(self, quotes: MarketQuotes, side_name: str, asset_id: str) -> Decimal:
        """What risk counts against the market's position limit besides the new quote: the tokens held
        at cost and the resting buys, the one this quote replaces included (it holds its reservation
        until the venue replaced it)."""
        cost = self.cost
        committed = cost.get(quotes.yes, ZERO) + cost.get(quotes.no, ZERO)
        for order_id in (quotes.bid_id, quotes.ask_id):
            order = self.orders.get(order_id or "")
            if (
                order is not None
                and order.side == "BUY"
                and (not order.cancelling or order.asset_id == asset_id)
            ):
                committed += order.price * order.leaves
        return committed

    def _exposure(self) -> Decimal:
        """The bot's own exposure as risk counts it: positions at cost plus resting buys."""
        resting = sum((o.price * o.leaves for o in self.orders.values() if o.side == "BUY"), ZERO)
        return sum(self.cost.values(), ZERO) + resting

    def _cancel_side(self, quotes: MarketQuotes, side_name: str) -> list[OrderIntent]:
        current_id = quotes.bid_id if side_name == "bid" else quotes.ask_id
        order = self.orders.get(current_id) if current_id else None
        if side_name == "bid":
            quotes.bid_id = None
        else:
            quotes.ask_id = None
        intent = self.cancel(order) if order is not None else None
        return [intent] if intent is not None else []

    def _pull(self, quotes: MarketQuotes) -> list[OrderIntent]:
        quotes.fair = None
        if quotes.bid_id is None and quotes.ask_id is None:
            return []  # nothing quoted (the common case while a market is too volatile)
        return self._cancel_side(quotes, "bid") + self._cancel_side(quotes, "ask")
