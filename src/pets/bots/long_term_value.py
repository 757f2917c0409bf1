"""Bot 10, Long-term Value (conservative): holds to resolution where the trader's fundamentals or the
model disagree with the price, when the return per year of locked capital is worth it.

Bot 9's machinery (kelly_value_betting.py: model reload, Kelly sizing with fees, equity, settlement)
with these rules:
- p: the trader's fair value (config/fair_values.yaml, reread when it changed on the timer that checks
  for a new model, every `reload_interval_ms` of venue time: never per top of book) while it is valid
  (`valid_until`), else the promoted calibration model;
- entry: p - c > min_edge (c = ask + taker fee) and the annualised return of the capital locked until
  the market's end date, (p - c) / c x 365 / days_to_end, at least `min_annual_return` (a 5% edge over
  300 days is worth less than 3% over 10); prices in zones 1-3 ([0, 0.60)), zone 3 only with p > 0.52;
- caps: `max_position_usdc` of cost per market and `max_total_usdc` across all markets;
- exit: only when the edge has reversed by more than `exit_margin` (p < bid net of fee - exit_margin);
  otherwise held until the market resolves (md.markets: MarketInfo.closed / winning_asset_id, from the
  venue's `market_resolved` or Gamma), where the venue pays the winner.
"""

from __future__ import annotations

from decimal import Decimal

from mypy_extensions import mypyc_attr

from pets.bots.base import ZERO
from pets.bots.kelly_value_betting import Estimate, KellyValueBetting
from pets.pipelines.forecasts import DAY_MS, FairValueSource, ModelSource, default_fair_values
from pets.schemas.config import BotConfig, LongTermValueParams, VenueConfig
from pets.schemas.fair_values import FairValues
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import OrderIntent

DAYS_PER_YEAR = Decimal(365)


def annualised_return(edge: Decimal, cost: Decimal, days: Decimal) -> Decimal:
    """Return per year of the capital locked: edge / cost per unit of capital, x 365 / days to the end."""
    return edge / cost * DAYS_PER_YEAR / days


@mypyc_attr(allow_interpreted_subclasses=True)
class LongTermValue(KellyValueBetting):
    params_type = LongTermValueParams

    def __init__(
        self,
        config: BotConfig,
        venue: VenueConfig,
        id_namespace: str | None = None,
        model_source: ModelSource | None = None,
        fair_values: FairValueSource | None = None,
    ) -> None:
        super().__init__(config, venue, id_namespace, model_source)
        self.fair_values: FairValueSource = (
            fair_values if fair_values is not None else default_fair_values(self.ltv.fair_values_file)
        )
        self.fairs: FairValues = self.fair_values.current()

    def _on_timer(self, now_ms: int) -> list[OrderIntent]:
        self.fairs = self.fair_values.current()
        return super()._on_timer(now_ms)

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        super().bind(config, venue)
        self.ltv: LongTermValueParams = config.params_as(LongTermValueParams)
        if hasattr(self, "fair_values") and not hasattr(self, "fairs"):  # a snapshot from before `fairs`
            self.fairs = self.fair_values.current()

    def estimate(self, info: MarketInfo, asset_id: str, tob: TopOfBook) -> Estimate | None:
        fair = self.fairs.current(info.condition_id, self.clock_ms)
        if fair is None or len(info.token_ids) != 2:
            return super().estimate(info, asset_id, tob)
        until = fair.valid_until.isoformat()
        note = f"fair value {fair.probability} of {info.outcomes[0]} until {until}: {fair.note}"
        return Estimate(fair.of(info.token_ids.index(asset_id)), "fair_value", None, note)

    def wants_tops(self) -> bool:
        markets = self.markets
        return super().wants_tops() or any(market in markets for market in self.fairs.by_market)

    def exit_margin(self) -> Decimal:
        return self.ltv.exit_margin

    def entry_allowed(self, info: MarketInfo, asset_id: str, estimate: Estimate, cost: Decimal) -> bool:
        if info.end_date_ms is None or info.end_date_ms <= self.clock_ms:
            return False
        days = Decimal(info.end_date_ms - self.clock_ms) / DAY_MS
        return annualised_return(estimate.probability - cost, cost, days) >= self.ltv.min_annual_return

    def capital_room(self, asset_id: str) -> Decimal:
        total_room = self.ltv.max_total_usdc - self.locked()
        return min(super().capital_room(asset_id), total_room) if total_room > 0 else ZERO
