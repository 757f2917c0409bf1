"""Bot 1, Market Rebalancing Arbitrage: YES + NO of one binary market bought below 1, sold above 1.

A YES and a NO share together pay exactly 1 at resolution. When best ask YES + best ask NO plus the
taker fees of both legs (fee = shares x feeRate x p x (1 - p) per leg) leave at least `min_edge` per
basket, the bot buys both legs for the size both best levels can still fill (what our own fills took
is not offered again until the venue updates the level; capped by max_basket_shares held, and by
max_position_usdc at cost with the taker fees, as risk counts it), equal sizes on the 0.01 grid, as
two FOK orders with one group id; each leg fills at its best ask, so the fee is counted at that price.
When it holds baskets and best bid YES + best bid NO minus the taker fees exceeds
`sell_bid_sum_above`, it sells them back the same way. A basket left one-legged is unwound by
`BasketBot` (after `unwind_after_ms` at most).

The feeRate is what the venue charges: the market's own (MarketInfo.fee_rate) when the venue states
it, else its category's (venue_precision.fee_rate, the rule risk and the paper exchange use too).
"""

from __future__ import annotations

from decimal import Decimal

from mypy_extensions import mypyc_attr

from pets.bots.baskets import BasketBot, Leg
from pets.schemas.config import BotConfig, MarketRebalancingArbParams, VenueConfig
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import OrderIntent
from pets.venue.precision import round_size, taker_fee

ONE = Decimal(1)


@mypyc_attr(allow_interpreted_subclasses=True)
class MarketRebalancingArb(BasketBot):
    strategy_type = "arbitrage"
    routing = "market"

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        super().bind(config, venue)
        self.params = config.params_as(MarketRebalancingArbParams)
        self.unwind_after_ms = self.params.unwind_after_ms

    def _on_book(self, tob: TopOfBook) -> list[OrderIntent]:
        p = self.params
        ask_sum, bid_sum = tob.ask_sum, tob.bid_sum
        if (
            ask_sum is not None
            and bid_sum is not None
            and ONE - ask_sum < p.min_edge
            and bid_sum <= p.sell_bid_sum_above
            and not self.unbalanced
        ):
            return []  # the market state's complement sums already rule out both trades (most books)
        out = self.retry_unwind(tob.asset_id) if self.unbalanced else []
        info = self.token_market[tob.asset_id]
        tokens = self.pairs.get(info.condition_id)
        if tokens is None:
            return out
        yes, no = self.books.get(tokens[0]), self.books.get(tokens[1])
        if yes is None or no is None or yes.stale or no.stale or not _in_step(tob, yes, no):
            return out
        if not self.current(tob):
            return out
        trade = self._buy(info, yes, no) or self._sell(info, yes, no)
        if (
            not trade
            or not self.active
            or not self.tradable(info)
            or not self.idle(info.condition_id, tokens)
        ):
            return out
        return out + self.send_basket(info.condition_id, trade)

    def _buy(self, info: MarketInfo, yes: TopOfBook, no: TopOfBook) -> list[Leg]:
        p = self.params
        ya, na = yes.best_ask, no.best_ask
        if ya is None or na is None:
            return []
        cost = ya + na
        if ONE - cost < p.min_edge:  # fees only lower the edge: most books stop here
            return []
        rate = self.fee_rate(info)
        fees = taker_fee(ONE, ya, rate) + taker_fee(ONE, na, rate)
        if ONE - cost - fees < p.min_edge:
            return []
        held = min(self.held(yes.asset_id), self.held(no.asset_id))
        # risk counts the market's positions at cost and each leg at its price + taker fee
        room = self.config.max_position_usdc - self.held_cost([yes.asset_id, no.asset_id])
        size = round_size(min(
            self.fresh_size(yes, "BUY"), self.fresh_size(no, "BUY"), p.max_basket_shares - held,
            room / (cost + fees),
        ))  # fmt: skip
        if size * min(ya, na) < self.venue.min_marketable_usdc:
            return []
        return [(yes.asset_id, "BUY", ya, size), (no.asset_id, "BUY", na, size)]

    def _sell(self, info: MarketInfo, yes: TopOfBook, no: TopOfBook) -> list[Leg]:
        p = self.params
        yb, nb = yes.best_bid, no.best_bid
        if yb is None or nb is None:
            return []
        if yb + nb <= p.sell_bid_sum_above:
            return []
        held = min(self.held(yes.asset_id), self.held(no.asset_id))
        if held <= 0:
            return []
        rate = self.fee_rate(info)
        if yb + nb - taker_fee(ONE, yb, rate) - taker_fee(ONE, nb, rate) <= p.sell_bid_sum_above:
            return []
        size = round_size(min(held, self.fresh_size(yes, "SELL"), self.fresh_size(no, "SELL")))
        if size * min(yb, nb) < self.venue.min_marketable_usdc:
            return []
        return [(yes.asset_id, "SELL", yb, size), (no.asset_id, "SELL", nb, size)]


def _in_step(tob: TopOfBook, yes: TopOfBook, no: TopOfBook) -> bool:
    """False while the complement's book of the same venue timestamp is still on its way: the market
    state's sums (computed with both books updated) disagree with the two books this bot holds."""
    ya, na = yes.best_ask, no.best_ask
    if tob.ask_sum is not None and ya is not None and na is not None and ya + na != tob.ask_sum:
        return False
    if tob.bid_sum is not None and yes.best_bid is not None and no.best_bid is not None:
        return yes.best_bid + no.best_bid == tob.bid_sum
    return True
