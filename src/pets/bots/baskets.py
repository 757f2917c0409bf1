"""Baskets for the arbitrage bots: legs sent together, and one-legged fills unwound.

An arbitrage holds sets of tokens that pay a fixed amount together (YES + NO of a binary market;
every YES, or every NO, of a neg-risk event). Its legs go out at once as FOK orders sharing one
group_id. The invariant afterwards: equal quantities of every token of a set. When a basket ends
unequal (a leg was killed, denied or filled short), the excess of each token over the smallest leg is
sold back at the best bid (FAK) as soon as every leg is finished, or once `unwind_after_ms` has passed
with a leg still unanswered (that leg is cancelled). An excess that cannot be sold yet (no bid, or
below the venue's $1 marketable minimum) is retried once that token's best bid changes.

Three guards keep a basket's legs from being refused while the others fill:
- Own takes: the venue shows what our fills took from a level only with its next update of that
  level (the paper exchange does the same), so until the displayed size at that price changes, the
  size we took is subtracted from it (`fresh_size`). Without this a bot buys the same displayed size
  again on the next frame and its FOK legs are rejected one by one.
- Late books: a basket opens only on a top of book as new as the latest venue time the bot has seen
  (`current`); a top of book published after newer frames (a one-token update held back until the
  market's next event) describes a book that may have moved since.
- Rate: a basket goes out only after `RATE_WINDOW_MS` without orders of this bot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import msgspec
from mypy_extensions import mypyc_attr

from pets.bots.base import Bot, OwnOrder
from pets.schemas.config import BotConfig, VenueConfig
from pets.schemas.market_data import TopOfBook
from pets.schemas.orders import ExecutionReport, OrderIntent, Side
from pets.venue.precision import round_size

ZERO = Decimal(0)
# The risk gate counts a bot's orders over one second (risk_management.yaml max_orders_per_second): a
# basket goes out only after a second without orders of this bot, so none of its legs is refused for
# the rate while the others go through.
RATE_WINDOW_MS = 1_000
Leg = tuple[str, Side, Decimal, Decimal]  # (token, side, price, size)
Level = tuple[Decimal | None, Decimal | None]  # (price, size) of a best level


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class Basket:
    group_id: str
    tokens: tuple[str, ...]
    started_ms: int
    prices: tuple[Decimal, ...]
    working: set[str] = field(default_factory=set)  # client ids of legs not finished yet
    filled: Decimal = Decimal(0)
    planned: Decimal = Decimal(0)


@mypyc_attr(allow_interpreted_subclasses=True)
class BasketBot(Bot):
    """Shared machinery of Bot 1 and Bot 6; subclasses decide when to trade a basket."""

    def __init__(self, config: BotConfig, venue: VenueConfig, id_namespace: str | None = None) -> None:
        super().__init__(config, venue, id_namespace)
        self.baskets: dict[str, Basket] = {}  # group id -> basket in flight
        self.busy: dict[str, str] = {}  # basket key (market / event) -> group id in flight
        self.sets: dict[str, tuple[str, ...]] = {}  # token -> the set of tokens it is held with
        self.unbalanced: dict[str, Level] = {}  # token -> best bid at which its excess did not sell
        self.short: dict[str, tuple[Decimal, ...]] = {}  # basket key -> leg prices that did not fill fully
        # (token, our side, price) -> (size the level showed when we took from it, shares we took)
        self.taken: dict[tuple[str, Side, Decimal], tuple[Decimal, Decimal]] = {}
        # token -> what the shares held cost, fees included: as risk counts a position against its limits
        self.cost: dict[str, Decimal] = {}
        self.last_order_ms: int | None = None  # venue time of this bot's latest new order

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        super().bind(config, venue)
        self.unwind_after_ms: int | None = None  # None: legs are only waited for (FOK legs finish at once)

    def send_basket(self, key: str, legs: list[Leg]) -> list[OrderIntent]:
        """FOK legs with one group id; the basket key (market or event) is busy until they finish."""
        prices = tuple(price for _, _, price, _ in legs)
        if self.short.get(key) == prices:
            return []  # the same basket at the same prices just came back short: wait for the book to move
        if self.last_order_ms is not None and self.clock_ms - self.last_order_ms < RATE_WINDOW_MS:
            return []
        group_id = self.new_group_id(key)
        tokens = tuple(token for token, *_ in legs)
        basket = Basket(group_id, tokens, self.clock_ms, prices)
        intents = []
        for token, side, price, size in legs:
            self.sets[token] = tokens
            intent = self.place(token, side, price, size, order_type="FOK", group_id=group_id, passive=False)
            if intent is not None:
                intents.append(intent)
                basket.working.add(intent.client_order_id)
                basket.planned += intent.size
        if not intents:
            return []
        # risk decides the legs together once it has all of them (a leg rounded to nothing is not sent)
        intents = [msgspec.structs.replace(intent, group_size=len(intents)) for intent in intents]
        self.last_order_ms = self.clock_ms
        self.baskets[group_id] = basket
        self.busy[key] = group_id
        if self.unwind_after_ms is not None:
            self.schedule(self.clock_ms + self.unwind_after_ms)
        return intents

    def idle(self, key: str, tokens: tuple[str, ...] | list[str]) -> bool:
        """No basket in flight for `key` and no order (an unwind) or unsold excess on `tokens`."""
        if key in self.busy or any(token in self.unbalanced for token in tokens):
            return False
        return not any(order.asset_id in tokens for order in self.orders.values())

    def retry_unwind(self, token: str) -> list[OrderIntent]:
        """On a book update: sell an excess that could not be sold before, once the bid has changed."""
        if token not in self.unbalanced:
            return []
        tob = self.fresh_book(token)
        if tob is None or _best_bid(tob) == self.unbalanced[token]:
            return []
        return self.rebalance(self.sets[token])

    def held_cost(self, tokens: list[str] | tuple[str, ...]) -> Decimal:
        """What the shares held of `tokens` cost (settled tokens are no longer held)."""
        return sum((self.cost.get(token, ZERO) for token in tokens if self.held(token) > 0), ZERO)

    def current(self, tob: TopOfBook) -> bool:
        """The top of book is as new as the latest venue time seen (not published late)."""
        return tob.ts_ms >= self.clock_ms

    def fresh_size(self, tob: TopOfBook, side: Side) -> Decimal:
        """The best ask (for a BUY) or bid (for a SELL) size that our own fills have not taken yet."""
        price, shown = (tob.best_ask, tob.best_ask_size) if side == "BUY" else _best_bid(tob)
        if price is None or shown is None:
            return ZERO
        key = (tob.asset_id, side, price)
        taken = self.taken.get(key)
        if taken is None:
            return shown
        if taken[0] != shown:  # the venue updated the level since: our take is in what it shows
            del self.taken[key]
            return shown
        return max(ZERO, shown - taken[1])

    # ------------------------------------------------------------------ hooks

    def _on_fill(self, order: OwnOrder, report: ExecutionReport) -> list[OrderIntent]:
        basket = self.baskets.get(order.group_id or "")
        if basket is not None:
            basket.filled += report.last_qty
        token, qty = order.asset_id, report.last_qty
        if order.side == "BUY":
            fill_cost = qty * (report.last_px or order.price) + report.fee - report.rebate
            self.cost[token] = self.cost.get(token, ZERO) + fill_cost
        else:  # the shares sold take their share of the cost with them
            held_before = self.held(token) + qty
            kept = self.held(token) / held_before if held_before > 0 else ZERO
            self.cost[token] = self.cost.get(token, ZERO) * kept
        if report.liquidity != "maker":
            self._remember_take(order, report)
        return []

    def _remember_take(self, order: OwnOrder, report: ExecutionReport) -> None:
        """Our taker fill took `last_qty` from the best level the bot saw at that price."""
        tob = self.books.get(order.asset_id)
        if tob is None:
            return
        price, shown = (tob.best_ask, tob.best_ask_size) if order.side == "BUY" else _best_bid(tob)
        if price is None or shown is None or price != report.last_px:
            return
        key = (order.asset_id, order.side, price)
        earlier = self.taken.get(key)
        already = earlier[1] if earlier is not None and earlier[0] == shown else ZERO
        self.taken[key] = (shown, already + report.last_qty)

    def _on_order_gone(self, order: OwnOrder, why: str) -> list[OrderIntent]:
        basket = self.baskets.get(order.group_id or "")
        if basket is not None:
            basket.working.discard(order.client_order_id)
            if basket.working:
                return []
            self._close(basket)
        tokens = self.sets.get(order.asset_id)
        if tokens is None:
            return []
        if basket is None and order.side == "SELL" and order.filled == 0:
            # an unwind found no buyer: wait for the bid to change
            tob = self.books.get(order.asset_id)
            self.unbalanced[order.asset_id] = _best_bid(tob) if tob is not None else (order.price, None)
            return []
        return self.rebalance(tokens)

    def _on_timer(self, now_ms: int) -> list[OrderIntent]:
        out: list[OrderIntent] = []
        assert self.unwind_after_ms is not None
        for basket in list(self.baskets.values()):
            due = basket.started_ms + self.unwind_after_ms
            if now_ms < due:
                self.schedule(due)
                continue
            for client_id in sorted(basket.working):
                order = self.orders.get(client_id)
                intent = self.cancel(order) if order is not None else None
                if intent is not None:
                    out.append(intent)
            self._close(basket)
            out += self.rebalance(basket.tokens)
        return out

    # ------------------------------------------------------------------ rebalancing

    def _close(self, basket: Basket) -> None:
        del self.baskets[basket.group_id]
        for key, group in list(self.busy.items()):
            if group == basket.group_id:
                del self.busy[key]
                if basket.filled < basket.planned:
                    self.short[key] = basket.prices
                else:
                    self.short.pop(key, None)

    def rebalance(self, tokens: tuple[str, ...]) -> list[OrderIntent]:
        """Sell each token's excess over the smallest holding of the set at the best bid (FAK)."""
        if any(set(tokens) & set(b.tokens) for b in self.baskets.values()):
            return []  # a basket on these tokens is still working: rebalance when it finishes
        target = min(self.held(token) for token in tokens)
        out: list[OrderIntent] = []
        for token in tokens:
            self.unbalanced.pop(token, None)
            excess = round_size(self.held(token) - target)
            if excess <= 0 or any(o.asset_id == token and o.side == "SELL" for o in self.orders.values()):
                continue
            tob = self.fresh_book(token)
            if (
                tob is None
                or tob.best_bid is None
                or self.fresh_size(tob, "SELL") <= 0
                or excess * tob.best_bid < self.venue.min_marketable_usdc
            ):
                self.unbalanced[token] = _best_bid(tob) if tob is not None else (None, None)
                continue
            intent = self.place(token, "SELL", tob.best_bid, excess, order_type="FAK", passive=False)
            if intent is not None:
                out.append(intent)
                self.last_order_ms = self.clock_ms
        return out


def _best_bid(tob: TopOfBook) -> Level:
    return tob.best_bid, tob.best_bid_size
