"""Bot 7, AI Contrarian + Attention (neutral-aggressive): bets against a crowd that moved a price
sharply on a burst of news when a forecaster disagrees with the new price.

Per market (routing "market"), from what the bot sees:
- attention: the market's latest attention features (features.news, the news flow's NewsAttention,
  at most `attention_window_s` old): its items in 5 min against its 24 h rate per 5 min (at least
  `baseline_floor` items assumed): a spike is a ratio of at least `min_attention_ratio` with at least
  `min_news` items in 5 min;
- the move: the YES token's mid now against the mid 5 min before the item (the mid when the features
  came, less their `momentum_5m`), at least `min_price_move`;
- the forecast q: the latest probability of a news or model signal for the market (the LLM
  forecaster, or the baseline calibration forecaster when no LLM is configured: the signal's
  `model_version` names it), at most `max_signal_age_s` old, shrunk toward the price:
  q' = w * q + (1 - w) * p (w = `shrink_weight`, p = the YES mid).
When the crowd bid YES up and q' < p - `min_edge`, it buys NO; when it sold YES down and
q' > p + `min_edge`, it buys YES: a FAK at the ask sized by exact Kelly with fees (risk/kelly.py) on
the bankroll not yet spent, in a zone the `contrarian` rules allow. Then the market cools down for
`cooldown_s`. Positions are held to resolution. Every intent's cause names the forecast's signal,
the forecaster (model_version), q' and the attention that triggered it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from mypy_extensions import mypyc_attr

from pets.bots.base import ZERO, Bot, DataTopic, OwnOrder
from pets.risk.denial import Denial
from pets.risk.kelly import kelly_stake
from pets.schemas.config import AiContrarianAttentionParams, BotConfig, VenueConfig
from pets.schemas.market_data import TopOfBook
from pets.schemas.orders import ExecutionReport, OrderIntent
from pets.schemas.signals import NewsAttention, Signal, SignalSource
from pets.venue.precision import SIZE_STEP, round_size

MS_PER_S = 1000
NS_PER_MS = 1_000_000
ONE = Decimal(1)
PROBABILITY_STEP = Decimal("0.0001")
WINDOWS_PER_DAY = 288  # 5 min windows in 24 h: the features' news_5m against news_24h


def attention_ratio(features: NewsAttention, floor: Decimal) -> Decimal:
    """The features' 5 min count against their 24 h rate per 5 min, that rate at least `floor`."""
    return Decimal(features.news_5m) / max(Decimal(features.news_24h) / WINDOWS_PER_DAY, floor)


@mypyc_attr(allow_interpreted_subclasses=True)
class AiContrarian(Bot):
    strategy_type = "directional"
    signal_sources: ClassVar[tuple[SignalSource, ...]] = ("news", "model")
    data_topics: ClassVar[tuple[DataTopic, ...]] = ("features.news",)
    params_type: ClassVar[type[AiContrarianAttentionParams]] = AiContrarianAttentionParams
    skips_tops = True

    def __init__(self, config: BotConfig, venue: VenueConfig, id_namespace: str | None = None) -> None:
        super().__init__(config, venue, id_namespace)
        self.attention: dict[str, NewsAttention] = {}  # market -> its latest features
        self.before: dict[str, Decimal] = {}  # market -> YES mid 5 min before its latest item
        self.forecasts: dict[str, tuple[Decimal, Signal]] = {}  # market -> (q of YES, the signal)
        self.cool_until: dict[str, int] = {}
        self.spent = ZERO  # cost of what it bought (held to resolution)

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        super().bind(config, venue)
        self.params: AiContrarianAttentionParams = config.params_as(self.params_type)

    def _on_signal(self, signal: Signal) -> list[OrderIntent]:
        market = signal.market
        pair = self.pairs.get(market)
        if pair is None:
            return []
        if signal.probability is not None and signal.asset_id in pair:
            q = signal.probability if signal.asset_id == pair[0] else ONE - signal.probability
            self.forecasts[market] = (q, signal)
        return self._evaluate(market)

    def _on_news_attention(self, features: NewsAttention) -> list[OrderIntent]:
        market = features.market
        pair = self.pairs.get(market)
        yes = self.books.get(pair[0]) if pair is not None else None
        if yes is None or yes.mid is None:
            return []
        self.attention[market] = features
        self.before[market] = yes.mid - (features.momentum_5m or ZERO)
        return self._evaluate(market)

    def wants_tops(self) -> bool:
        return bool(self.attention)  # a book re-evaluates only a market with attention features

    def _on_book(self, tob: TopOfBook) -> list[OrderIntent]:
        market = self.token_market[tob.asset_id].condition_id
        return self._evaluate(market) if market in self.attention else []

    def _on_fill(self, order: OwnOrder, report: ExecutionReport) -> list[OrderIntent]:
        if order.side == "BUY":
            px = report.last_px if report.last_px is not None else order.price
            self.spent += px * report.last_qty + report.fee
        return []

    def _evaluate(self, market: str) -> list[OrderIntent]:
        params = self.params
        info = self.markets.get(market)
        pair = self.pairs.get(market)
        if (
            info is None
            or pair is None
            or not self.tradable(info)
            or self.clock_ms < self.cool_until.get(market, 0)
        ):
            return []
        if any(o.market == market for o in self.orders.values()) or any(self.held(t) > 0 for t in pair):
            return []
        forecast = self.forecasts.get(market)
        if (
            forecast is None
            or self.clock_ms - forecast[1].ts_ns // NS_PER_MS > params.max_signal_age_s * MS_PER_S
        ):
            return []
        attention = self.attention.get(market)
        age_ms = self.clock_ms - attention.ts_ns // NS_PER_MS if attention is not None else None
        if attention is None or age_ms is None or age_ms > params.attention_window_s * MS_PER_S:
            return []
        recent, ratio = attention.news_5m, attention_ratio(attention, params.baseline_floor)
        if recent < params.min_news or ratio < params.min_attention_ratio:
            return []
        yes = self.fresh_book(pair[0])
        if yes is None or yes.mid is None:
            return []
        p = yes.mid
        move = p - self.before[market]
        if abs(move) < params.min_price_move:
            return []
        q, signal = forecast
        w = params.shrink_weight
        shrunk = (w * q + (ONE - w) * p).quantize(PROBABILITY_STEP)
        if move > 0 and shrunk < p - params.min_edge:
            token, probability = pair[1], ONE - shrunk
        elif move < 0 and shrunk > p + params.min_edge:
            token, probability = pair[0], shrunk
        else:
            return []
        tob = self.fresh_book(token)
        if tob is None or tob.best_ask is None or not self.zone_allows(tob.best_ask, probability=probability):
            return []
        ask = tob.best_ask
        stake = kelly_stake(probability, ask, self.fee_rate(info), params.bankroll_usdc - self.spent,
                            params.kelly_fraction)  # fmt: skip
        if isinstance(stake, Denial):
            return []
        shares = stake.shares
        if tob.best_ask_size is not None:
            shares = min(shares, tob.best_ask_size)
        shares = round_size(min(shares, self.config.max_position_usdc / ask))
        if shares < SIZE_STEP or shares * ask < max(
            self.config.min_position_usdc, self.venue.min_marketable_usdc
        ):
            return []
        note = f"attention {recent} items ({ratio:.1f}x baseline), move {move:+}, q {q} -> q' {shrunk} vs {p}"
        intent = self.place(token, "BUY", ask, shares, order_type="FAK", probability=probability,
                            cause=self.cause_of(signal, probability, note))  # fmt: skip
        if intent is None:
            return []
        self.cool_until[market] = self.clock_ms + params.cooldown_s * MS_PER_S
        return [intent]
