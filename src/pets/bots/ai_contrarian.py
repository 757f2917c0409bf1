"""Bot 7, AI Contrarian + Attention (neutral-aggressive): bets against a crowd that moved a price
sharply on a burst of news when a forecaster disagrees with the new price.

Per market (routing "market"), from what the bot sees:
- attention: the news items matched to the market (signal.news) in the last `attention_window_s`
  against their rate over `baseline_window_s` (at least `baseline_floor` items per window): a spike
  is a ratio of at least `min_attention_ratio` with at least `min_news` items;
- the move: the YES token's mid now against `move_window_s` ago, at least `min_price_move`;
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

from pets.bots.base import ZERO, Bot, OwnOrder
from pets.bots.news_scalping import mid_at
from pets.risk.denial import Denial
from pets.risk.kelly import kelly_stake
from pets.schemas.config import AiContrarianAttentionParams, BotConfig, VenueConfig
from pets.schemas.market_data import TopOfBook
from pets.schemas.orders import ExecutionReport, OrderIntent
from pets.schemas.signals import Signal, SignalSource
from pets.venue.precision import SIZE_STEP, round_size

MS_PER_S = 1000
NS_PER_MS = 1_000_000
ONE = Decimal(1)
PROBABILITY_STEP = Decimal("0.0001")


def attention_ratio(
    news_ms: list[int], now_ms: int, window_ms: int, baseline_ms: int, floor: Decimal
) -> tuple[int, Decimal]:
    """(items in the window, their count / the baseline's expected count per window)."""
    recent = sum(1 for t in news_ms if now_ms - window_ms < t <= now_ms)
    before = sum(1 for t in news_ms if now_ms - baseline_ms < t <= now_ms - window_ms)
    expected = Decimal(before) * window_ms / max(baseline_ms - window_ms, 1)
    return recent, Decimal(recent) / max(expected, floor)


@mypyc_attr(allow_interpreted_subclasses=True)
class AiContrarian(Bot):
    strategy_type = "directional"
    signal_sources: ClassVar[tuple[SignalSource, ...]] = ("news", "model")
    params_type: ClassVar[type[AiContrarianAttentionParams]] = AiContrarianAttentionParams

    def __init__(self, config: BotConfig, venue: VenueConfig, id_namespace: str | None = None) -> None:
        super().__init__(config, venue, id_namespace)
        self.news_ms: dict[str, list[int]] = {}  # market -> first sightings of its news items
        self.forecasts: dict[str, tuple[Decimal, Signal]] = {}  # market -> (q of YES, the signal)
        self.mids: dict[str, list[tuple[int, Decimal]]] = {}  # YES token -> (venue ms, mid)
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
        if signal.source == "news":
            times = self.news_ms.setdefault(market, [])
            times.append(signal.ts_ns // NS_PER_MS)
            horizon = self.clock_ms - self.params.baseline_window_s * MS_PER_S
            self.news_ms[market] = [t for t in times if t > horizon]
        if signal.probability is not None and signal.asset_id in pair:
            q = signal.probability if signal.asset_id == pair[0] else ONE - signal.probability
            self.forecasts[market] = (q, signal)
        return self._evaluate(market)

    def _on_book(self, tob: TopOfBook) -> list[OrderIntent]:
        info = self.token_market[tob.asset_id]
        pair = self.pairs.get(info.condition_id)
        if pair is None or tob.mid is None:
            return []
        if tob.asset_id == pair[0]:
            history = self.mids.setdefault(tob.asset_id, [])
            if not history or history[-1][1] != tob.mid:
                history.append((tob.ts_ms, tob.mid))
            horizon = self.clock_ms - self.params.move_window_s * MS_PER_S * 2
            while len(history) > 1 and history[1][0] <= horizon:
                history.pop(0)
        return self._evaluate(info.condition_id) if info.condition_id in self.news_ms else []

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
        recent, ratio = attention_ratio(
            self.news_ms.get(market, []), self.clock_ms, params.attention_window_s * MS_PER_S,
            params.baseline_window_s * MS_PER_S, params.baseline_floor,
        )  # fmt: skip
        if recent < params.min_news or ratio < params.min_attention_ratio:
            return []
        yes = self.fresh_book(pair[0])
        if yes is None or yes.mid is None:
            return []
        p = yes.mid
        before = mid_at(self.mids.get(pair[0], []), self.clock_ms - params.move_window_s * MS_PER_S)
        if before is None:
            return []
        move = p - before
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
