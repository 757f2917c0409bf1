"""Bot 6, Multi-Outcome Arbitrage: every outcome of a neg-risk event bought for less than its payoff.

In a neg-risk event (the markets sharing neg_risk_market_id), exactly one outcome resolves YES. So
one YES share of every outcome pays 1, and one NO share of every outcome pays N - 1. When the best
asks of a full set plus the taker fees of every leg leave at least `min_edge` per 1 of payoff, the
bot buys the set: equal shares on every leg (0.01 grid), limited by the thinnest best level (less what
our own fills took from it, until the venue updates that level), by max_basket_usdc, and by what is
left of max_position_usdc after the sets already held in the event (their capital stays tied up until
it resolves), as FOK legs with one group id; each leg fills at its best ask, where its fee is counted.
It trades only when every outcome of the event is open and has a fresh (not stale) book; a set left
uneven is unwound by `BasketBot`.

The bot relies on the event's market list being complete (md.markets carries the whole universe):
an event with outcomes the bot has not seen would make the YES basket pay nothing.
"""

from __future__ import annotations

from decimal import Decimal

from mypy_extensions import mypyc_attr

from pets.bots.baskets import ZERO, BasketBot, Leg
from pets.schemas.config import BotConfig, MultiOutcomeArbParams, VenueConfig
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import OrderIntent
from pets.venue.precision import round_size, taker_fee

ONE = Decimal(1)


@mypyc_attr(allow_interpreted_subclasses=True)
class MultiOutcomeArb(BasketBot):
    strategy_type = "arbitrage"
    routing = "neg_risk_event"

    def __init__(self, config: BotConfig, venue: VenueConfig, id_namespace: str | None = None) -> None:
        super().__init__(config, venue, id_namespace)
        self.events: dict[str, list[str]] = {}  # neg_risk_market_id -> condition ids (sorted)

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        super().bind(config, venue)
        self.params = config.params_as(MultiOutcomeArbParams)

    def _on_market(self, info: MarketInfo) -> list[OrderIntent]:
        event = info.neg_risk_market_id
        if info.neg_risk and event is not None and self.pairs.get(info.condition_id) is not None:
            members = self.events.setdefault(event, [])
            if info.condition_id not in members:
                members.append(info.condition_id)
                members.sort()
        return []

    def _on_book(self, tob: TopOfBook) -> list[OrderIntent]:
        out = self.retry_unwind(tob.asset_id)
        event = self.token_market[tob.asset_id].neg_risk_market_id
        members = self.events.get(event or "")
        if not members or len(members) < 2 or not self.active or not self.current(tob):
            return out
        outcomes = [self.markets[m] for m in members]
        if not all(self.tradable(info) for info in outcomes):
            return out
        pairs = [self.pairs.get(info.condition_id) for info in outcomes]
        if not self.idle(event or "", [token for pair in pairs if pair for token in pair]):
            return out
        yes_legs = self._legs([pair[0] for pair in pairs if pair], outcomes, payoff=ONE)
        if yes_legs:
            return out + self.send_basket(event or "", yes_legs)
        if self.params.include_no_side:
            no_legs = self._legs(
                [pair[1] for pair in pairs if pair], outcomes, payoff=Decimal(len(members) - 1)
            )
            if no_legs:
                return out + self.send_basket(event or "", no_legs)
        return out

    def _legs(self, tokens: list[str], outcomes: list[MarketInfo], payoff: Decimal) -> list[Leg]:
        """Equal-size BUY legs at the best asks when the set is cheap enough, else []."""
        books = [self.fresh_book(token) for token in tokens]
        asks: list[tuple[str, Decimal, Decimal]] = []
        for tob in books:
            depth = self.fresh_size(tob, "BUY") if tob is not None else ZERO
            if tob is None or tob.best_ask is None or depth <= 0:
                return []
            asks.append((tob.asset_id, tob.best_ask, depth))
        cost = sum((ask for _, ask, _ in asks), Decimal(0))
        fees = sum(
            (
                taker_fee(ONE, ask, self.fee_rate(info))
                for info, (_, ask, _) in zip(outcomes, asks, strict=True)
            ),
            Decimal(0),
        )
        if (payoff - cost - fees) / payoff < self.params.min_edge:
            return []
        # the sets held in this event count against max_position_usdc (their capital stays until it resolves)
        budget = min(
            self.params.max_basket_usdc,
            self.config.max_position_usdc
            - self.held_cost([token for info in outcomes for token in info.token_ids]),
        )
        # each leg costs risk its price + taker fee
        size = round_size(min(min(depth for *_, depth in asks), budget / (cost + fees)))
        if any(size * ask < self.venue.min_marketable_usdc for _, ask, _ in asks):
            return []
        return [(token, "BUY", ask, size) for token, ask, _ in asks]
