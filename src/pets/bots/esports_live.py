"""Bot 2, Esports & Live Events (aggressive): trades a match's markets on the win model's probability
right after a game event, before the book reprices.

Signals (`signal.esports`, made by the esports flow from `esports.event` and the promoted
`esports_win_model`, pipelines/esports/signals.py) carry the probability p that the named token pays 1
and the feed's measured lag. The bot keeps the latest p of every token (the other token of a binary
market gets 1 - p) and:
- entry, on a signal whose feed lag is at most `max_feed_lag_ms`: Bot 9's rule and sizing (exact Kelly
  with the taker fee on the bot's equity, p - c > min_edge, asks in [min_price, max_price) with zone 3's
  0.52 rule), a FAK buy at the ask;
- exit when the gap closes: held and p - (bid net of fee) <= exit_edge, a FAK sell at the bid (on books
  and signals);
- a signal without a probability (the feed stalled, the game ended) sells what the market holds and
  stops entries there until a new probability arrives;
- an order the venue cancelled or rejected (it pauses markets around game events) is not retried: no
  entry in that market on signals created less than `venue_pause_ms` after the refusal.
One instance for every market (routing "bot"): the bankroll spans them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from mypy_extensions import mypyc_attr

from pets.bots.base import OwnOrder
from pets.bots.kelly_value_betting import (
    ONE,
    PROBABILITY_STEP,
    Estimate,
    KellyValueBetting,
    token_probabilities,
)
from pets.pipelines.forecasts import FixedModelSource, ModelSource
from pets.schemas.config import BotConfig, EsportsLiveParams, VenueConfig
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import OrderIntent
from pets.schemas.signals import Signal
from pets.venue.precision import taker_fee as venue_taker_fee


@mypyc_attr(allow_interpreted_subclasses=True)
class EsportsLiveEvents(KellyValueBetting):
    signal_sources = ("esports",)
    params_type: ClassVar[type[EsportsLiveParams]] = EsportsLiveParams  # type: ignore[assignment]

    def __init__(
        self,
        config: BotConfig,
        venue: VenueConfig,
        id_namespace: str | None = None,
        model_source: ModelSource | None = None,
    ) -> None:
        # the probability comes with each signal: no model is read here
        super().__init__(config, venue, id_namespace, model_source or FixedModelSource())
        self.views: dict[str, Estimate] = {}  # token -> the latest probability and its signal
        self.halted: dict[str, str] = {}  # market -> why entries wait for the next probability
        self.venue_paused_ms: dict[str, int] = {}  # market -> when the venue last refused an order

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        super().bind(config, venue)
        self.esports: EsportsLiveParams = config.params_as(EsportsLiveParams)

    # ------------------------------------------------------------------ signals

    def _on_signal(self, signal: Signal) -> list[OrderIntent]:
        info = self.markets.get(signal.market)
        if info is None:
            return []
        if signal.probability is None or signal.asset_id is None:
            self.halted[info.condition_id] = signal.rationale or "no probability"
            for token in info.token_ids:
                self.views.pop(token, None)
            return self._exit_market(info, f"stop: {signal.rationale}")
        self.halted.pop(info.condition_id, None)
        paused_at = self.venue_paused_ms.get(info.condition_id)
        if paused_at is not None and signal.ts_ns // 1_000_000 >= paused_at + self.esports.venue_pause_ms:
            del self.venue_paused_ms[info.condition_id]
        p = signal.probability.quantize(PROBABILITY_STEP)
        lag = signal.feed_lag_ms
        note = f"{signal.rationale}; feed lag {lag} ms" if lag is not None else signal.rationale
        for token, prob in token_probabilities(info, signal.asset_id, p):
            self.views[token] = Estimate(prob, "esports", signal.model_version, note, signal.signal_id)
        fresh = lag is None or lag <= self.esports.max_feed_lag_ms
        out: list[OrderIntent] = []
        for token in info.token_ids:
            out += self._decide(info, token, enter=fresh)
        return out

    def _decide(self, info: MarketInfo, token: str, *, enter: bool) -> list[OrderIntent]:
        tob = self.fresh_book(token)
        estimate = self.views.get(token)
        if tob is None or estimate is None or not self.tradable(info):
            return []
        for order in self.orders.values():
            if order.asset_id == token:
                return []  # one order per token at a time
        held = self.held(token)
        fee_rate = self.fee_rate(info)
        if held > 0 and tob.best_bid is not None:
            bid = tob.best_bid
            if estimate.probability - (bid - venue_taker_fee(ONE, bid, fee_rate)) <= self.esports.exit_edge:
                return self._sell(info, token, tob, held, estimate)
        if not enter:
            return []
        return self._buy(info, token, tob, held, fee_rate, estimate)

    def _exit_market(self, info: MarketInfo, why: str) -> list[OrderIntent]:
        out: list[OrderIntent] = []
        for token in info.token_ids:
            held = self.held(token)
            tob = self.fresh_book(token)
            if held <= 0 or tob is None or tob.best_bid is None:
                continue
            if any(order.asset_id == token for order in self.orders.values()):
                continue
            estimate = Estimate(tob.best_bid, "esports", None, why)
            out += self._sell(info, token, tob, held, estimate)
        return out

    # ------------------------------------------------------------------ Bot 9's hooks

    def estimate(self, info: MarketInfo, asset_id: str, tob: TopOfBook) -> Estimate | None:
        return self.views.get(asset_id)

    def entry_allowed(self, info: MarketInfo, asset_id: str, estimate: Estimate, cost: Decimal) -> bool:
        market = info.condition_id
        return market not in self.halted and market not in self.venue_paused_ms

    def wants_tops(self) -> bool:
        return any(self.held(token) > 0 for token in self.views)

    def _on_book(self, tob: TopOfBook) -> list[OrderIntent]:
        """Books only close positions (the gap closed); entries follow game events."""
        token = tob.asset_id
        if tob.stale or self.held(token) <= 0 or token not in self.views:
            return []
        return self._decide(self.token_market[token], token, enter=False)

    def _on_timer(self, now_ms: int) -> list[OrderIntent]:
        return []

    def _on_order_gone(self, order: OwnOrder, why: str) -> list[OrderIntent]:
        # a FAK's unfilled rest is cancelled by design; any other cancel or reject of an order the bot
        # did not cancel is the venue's (a pause around a game event): wait for the next event
        if order.filled < order.size and not order.cancelling and "remainder" not in why:
            self.venue_paused_ms[order.market] = self.clock_ms
        return []
