"""Bot 1, Market Rebalancing Arbitrage: YES + NO of one binary market bought below 1, sold above 1.

A YES and a NO share together pay exactly 1 at resolution. When best ask YES + best ask NO plus the
taker fees of both legs (fee = shares x feeRate x p x (1 - p) per leg) leave at least `min_edge` per
basket, the bot buys both legs for the size both best levels can fill (capped by max_basket_shares
held, and by max_position_usdc at cost) as two FOK orders with one group id. When it holds baskets
and best bid YES + best bid NO minus the taker fees exceeds `sell_bid_sum_above`, it sells them back
the same way. A basket left one-legged is unwound by `BasketBot` (after `unwind_after_ms` at most).

The feeRate is the market's own (MarketInfo.fee_rate) when the venue states it, else the rate of
`fee_category` in pets.yaml.
"""

from __future__ import annotations

from decimal import Decimal

from pets.bots.baskets import BasketBot
from pets.pipelines.venue_precision import round_size
from pets.schemas.config import BotConfig, MarketRebalancingArbParams, VenueConfig
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import OrderIntent

ONE = Decimal(1)


class MarketRebalancingArb(BasketBot):
    strategy_type = "arbitrage"
    routing = "market"

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        super().bind(config, venue)
        self.params = config.params_as(MarketRebalancingArbParams)
        self.unwind_after_ms = self.params.unwind_after_ms

    def leg_fee_rate(self, info: MarketInfo) -> Decimal:
        return info.fee_rate if info.fee_rate is not None else self.venue.fee_rate(self.params.fee_category)

    def _on_book(self, tob: TopOfBook) -> list[OrderIntent]:
        out = self.retry_unwind(tob.asset_id)
        info = self.token_market[tob.asset_id]
        tokens = self.pairs.get(info.condition_id)
        if (
            tokens is None
            or not self.active
            or not self.tradable(info)
            or not self.idle(info.condition_id, tokens)
        ):
            return out
        yes, no = (self.fresh_book(token) for token in tokens)
        if yes is None or no is None:
            return out
        return out + (self._buy(info, yes, no) or self._sell(info, yes, no))

    def _buy(self, info: MarketInfo, yes: TopOfBook, no: TopOfBook) -> list[OrderIntent]:
        p = self.params
        if (
            yes.best_ask is None
            or no.best_ask is None
            or yes.best_ask_size is None
            or no.best_ask_size is None
        ):
            return []
        rate = self.leg_fee_rate(info)
        cost = yes.best_ask + no.best_ask
        fees = rate * (yes.best_ask * (ONE - yes.best_ask) + no.best_ask * (ONE - no.best_ask))
        if ONE - cost - fees < p.min_edge:
            return []
        held = min(self.held(yes.asset_id), self.held(no.asset_id))
        size = round_size(min(
            yes.best_ask_size, no.best_ask_size, p.max_basket_shares - held,
            self.config.max_position_usdc / cost - held,
        ))  # fmt: skip
        if size * min(yes.best_ask, no.best_ask) < self.venue.min_marketable_usdc:
            return []
        return self.send_basket(
            info.condition_id,
            [(yes.asset_id, "BUY", yes.best_ask, size), (no.asset_id, "BUY", no.best_ask, size)],
        )

    def _sell(self, info: MarketInfo, yes: TopOfBook, no: TopOfBook) -> list[OrderIntent]:
        p = self.params
        held = min(self.held(yes.asset_id), self.held(no.asset_id))
        if held <= 0 or yes.best_bid is None or no.best_bid is None:
            return []
        if yes.best_bid_size is None or no.best_bid_size is None:
            return []
        rate = self.leg_fee_rate(info)
        fees = rate * (yes.best_bid * (ONE - yes.best_bid) + no.best_bid * (ONE - no.best_bid))
        if yes.best_bid + no.best_bid - fees <= p.sell_bid_sum_above:
            return []
        size = round_size(min(held, yes.best_bid_size, no.best_bid_size))
        if size * min(yes.best_bid, no.best_bid) < self.venue.min_marketable_usdc:
            return []
        return self.send_basket(
            info.condition_id,
            [(yes.asset_id, "SELL", yes.best_bid, size), (no.asset_id, "SELL", no.best_bid, size)],
        )
