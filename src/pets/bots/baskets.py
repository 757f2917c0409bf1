"""Baskets for the arbitrage bots: legs sent together, and one-legged fills unwound.

An arbitrage holds sets of tokens that pay a fixed amount together (YES + NO of a binary market;
every YES, or every NO, of a neg-risk event). Its legs go out at once as FOK orders sharing one
group_id. The invariant afterwards: equal quantities of every token of a set. When a basket ends
unequal (a leg was killed, denied or filled short), the excess of each token over the smallest leg is
sold back at the best bid (FAK) as soon as every leg is finished, or once `unwind_after_ms` has passed
with a leg still unanswered (that leg is cancelled). An excess that cannot be sold yet (no bid, or
below the venue's $1 marketable minimum) is retried on the next book update of that token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pets.bots.base import Bot, OwnOrder
from pets.pipelines.venue_precision import round_size
from pets.schemas.orders import ExecutionReport, OrderIntent, Side

Leg = tuple[str, Side, Decimal, Decimal]  # (token, side, price, size)


@dataclass(slots=True)
class Basket:
    group_id: str
    tokens: tuple[str, ...]
    started_ms: int
    prices: tuple[Decimal, ...]
    working: set[str] = field(default_factory=set)  # client ids of legs not finished yet
    filled: Decimal = Decimal(0)
    planned: Decimal = Decimal(0)


class BasketBot(Bot):
    """Shared machinery of Bot 1 and Bot 6; subclasses decide when to trade a basket."""

    unwind_after_ms: int | None = None  # None: legs are only waited for (FOK legs finish at once)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.baskets: dict[str, Basket] = {}  # group id -> basket in flight
        self.busy: dict[str, str] = {}  # basket key (market / event) -> group id in flight
        self.sets: dict[str, tuple[str, ...]] = {}  # token -> the set of tokens it is held with
        self.unbalanced: dict[str, Decimal | None] = {}  # token -> bid at which its excess did not sell
        self.short: dict[str, tuple[Decimal, ...]] = {}  # basket key -> leg prices that did not fill fully

    def send_basket(self, key: str, legs: list[Leg]) -> list[OrderIntent]:
        """FOK legs with one group id; the basket key (market or event) is busy until they finish."""
        prices = tuple(price for _, _, price, _ in legs)
        if self.short.get(key) == prices:
            return []  # the same basket at the same prices just came back short: wait for the book to move
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
        """On a book update: sell an excess that could not be sold before, once the bid has moved."""
        if token not in self.unbalanced:
            return []
        tob = self.fresh_book(token)
        if tob is None or tob.best_bid == self.unbalanced[token]:
            return []
        return self.rebalance(self.sets[token])

    # ------------------------------------------------------------------ hooks

    def _on_fill(self, order: OwnOrder, report: ExecutionReport) -> list[OrderIntent]:
        basket = self.baskets.get(order.group_id or "")
        if basket is not None:
            basket.filled += report.last_qty
        return []

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
            # an unwind found no buyer: wait for the bid to move
            self.unbalanced[order.asset_id] = order.price
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
            if tob is None or tob.best_bid is None or excess * tob.best_bid < self.venue.min_marketable_usdc:
                self.unbalanced[token] = tob.best_bid if tob is not None else None
                continue
            intent = self.place(token, "SELL", tob.best_bid, excess, order_type="FAK", passive=False)
            if intent is not None:
                out.append(intent)
        return out
