"""Bot 8, Tail Risk + MM Combo: many small longshot positions, plus Bot 5's quoting for stability.

Tail leg: any token whose best ask lies in [tail_min_price, tail_max_price] is bought once (FAK at
the ask, `position_usdc` worth, no more than the best level shows) and held to resolution, while the
bot holds fewer than `max_positions` tail positions overall and fewer than `max_positions_per_event`
in one event (a neg-risk event, or a single market). The intents carry strategy_type "tail_risk".
Market-making leg: a `MarketMaker` (Bot 5's class, composed, with the `market_making` params) under
the same bot id; its intents carry strategy_type "market_making" and its own client-id namespace.

Diversification limits span markets, so this bot runs as one instance (routing "bot").
"""

from __future__ import annotations

from mypy_extensions import mypyc_attr

from pets.bots.base import Bot
from pets.bots.market_making import MarketMaker
from pets.schemas.config import BotConfig, TailRiskMmParams, VenueConfig, ZoneFramework
from pets.schemas.control import ControlCommand
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ExecutionReport, OrderDenied, OrderIntent
from pets.venue.precision import round_size


@mypyc_attr(allow_interpreted_subclasses=True)
class TailRiskMM(Bot):
    strategy_type = "tail_risk"
    routing = "bot"

    def __init__(self, config: BotConfig, venue: VenueConfig, id_namespace: str | None = None) -> None:
        super().__init__(config, venue, id_namespace)
        self.maker = MarketMaker(config, venue, id_namespace=f"{self.id_namespace}mm")

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        super().bind(config, venue)
        self.params = config.params_as(TailRiskMmParams)
        if hasattr(self, "maker"):
            self.maker.bind(config, venue)

    def use_zones(self, zones: ZoneFramework) -> None:
        super().use_zones(zones)
        self.maker.use_zones(zones)

    # ------------------------------------------------------------------ both legs

    def on_market(self, info: MarketInfo) -> list[OrderIntent]:
        return self.maker.on_market(info) + super().on_market(info)

    def on_top_of_book(self, tob: TopOfBook) -> list[OrderIntent]:
        quotes = self.maker.on_top_of_book(tob)
        tail = Bot.on_top_of_book(self, tob)
        return quotes + tail if quotes and tail else quotes or tail

    def on_execution_report(self, report: ExecutionReport) -> list[OrderIntent]:
        if report.client_order_id in self.maker.orders or self.maker.owns(report.client_order_id):
            return self.maker.on_execution_report(report)
        return super().on_execution_report(report)

    def on_order_denied(self, denied: OrderDenied) -> list[OrderIntent]:
        if denied.intent.client_order_id in self.maker.orders:
            return self.maker.on_order_denied(denied)
        return super().on_order_denied(denied)

    def on_control(self, cmd: ControlCommand) -> list[OrderIntent]:
        return self.maker.on_control(cmd) + super().on_control(cmd)

    def timed_parts(self) -> tuple[Bot, ...]:
        return (self.maker, self)

    def on_timer(self, now_ms: int) -> list[OrderIntent]:
        return self.maker.on_timer(now_ms) + super().on_timer(now_ms)

    # ------------------------------------------------------------------ tail leg

    def event_of(self, asset_id: str) -> str:
        info = self.token_market[asset_id]
        return info.neg_risk_market_id or info.condition_id

    def positions(self) -> list[str]:
        """Tokens held or being bought by the tail leg."""
        held = {token for token, qty in self.inventory.items() if qty > 0}
        return sorted(held | {o.asset_id for o in self.orders.values() if o.side == "BUY"})

    def _on_book(self, tob: TopOfBook) -> list[OrderIntent]:
        p = self.params
        ask, depth = tob.best_ask, tob.best_ask_size
        if ask is None or depth is None or tob.stale or not p.tail_min_price <= ask <= p.tail_max_price:
            return []
        info = self.token_market[tob.asset_id]
        if not self.active or not self.tradable(info):
            return []
        positions = self.positions()
        if tob.asset_id in positions or len(positions) >= p.max_positions:
            return []
        event = self.event_of(tob.asset_id)
        if sum(1 for token in positions if self.event_of(token) == event) >= p.max_positions_per_event:
            return []
        size = round_size(min(p.position_usdc / ask, depth))
        if size * ask < self.venue.min_marketable_usdc:
            return []
        intent = self.place(tob.asset_id, "BUY", ask, size, order_type="FAK", passive=False)
        return [intent] if intent is not None else []
