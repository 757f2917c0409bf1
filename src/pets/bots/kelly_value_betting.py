"""Bot 9, Kelly Value Betting (conservative): buys what the promoted calibration model prices above the
market, sized by exact Kelly, and sells when the edge is gone.

For each token of an open market with a fresh book:
- p = the promoted `calibration_model` at the token's mid, the days to the market's end date and its
  category (pipelines/forecasts.py says how the features are derived); a model forecast published on
  `signal.model` (the simulator's in `pets run`) stands in for it on its token (and 1 - p on the other
  token of a binary market) until the signal expires, and acts at once;
- entry: the best ask lies in [min_price, max_price) (the zones of the `value_betting` zone strategy,
  1-2: [0, 0.40)), and p - c > min_edge where c = ask + feeRate x ask x (1 - ask) is what one share
  costs a taker; a price in zone 3 also needs p > coin_flip_min_probability (0.52), as risk demands.
  Size: `kelly_stake` (risk/kelly.py) with the bot's equity (cash + holdings at their mid) as bankroll,
  `kelly_fraction` of full Kelly, the shares already held counted, so it never adds past its target;
  then capped by the best ask's size and `max_position_usdc` of cost per market. A FAK buy at the ask.
- exit: p < bid - feeRate x bid x (1 - bid) (selling at the bid no longer loses to holding): a FAK
  sell of what it holds at the bid. Otherwise it holds to resolution, where the venue settles.
Every intent carries its cause: source "model", the model version, p and the features used (or the
forecast's signal id).

The bot checks the model source for a newly promoted version every `reload_interval_ms` of venue time
and swaps without a restart. One instance for every market (routing "bot"): the bankroll spans them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, NamedTuple

import msgspec
from mypy_extensions import mypyc_attr

from pets.bots.base import ZERO, Bot
from pets.pipelines.calibration import CalibrationModel
from pets.pipelines.forecasts import DAY_MS, ModelSource, default_model_source, probability
from pets.risk.denial import Denial
from pets.risk.kelly import kelly_stake, share_cost
from pets.schemas.config import BotConfig, KellyValueBettingParams, VenueConfig
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ExecutionReport, IntentCause, OrderIntent
from pets.schemas.signals import Signal, SignalSource
from pets.venue.precision import SIZE_STEP, round_size
from pets.venue.precision import taker_fee as venue_taker_fee

ONE = Decimal(1)
PROBABILITY_STEP = Decimal("0.000001")


def token_probabilities(info: MarketInfo, asset_id: str, p: Decimal) -> list[tuple[str, Decimal]]:
    """A signal's p for `asset_id`, and 1 - p for the other token of a binary market."""
    binary = len(info.token_ids) == 2
    return [(t, p if t == asset_id else ONE - p) for t in info.token_ids if binary or t == asset_id]


class Estimate(NamedTuple):
    """A win probability and where it came from (the intent's cause)."""

    probability: Decimal
    source: str  # model | fair_value
    version: str | None
    note: str
    signal_id: str | None = None  # the signal that carried it


class Forecast(NamedTuple):
    """A forecast published on signal.model for one token, as the bot received it."""

    estimate: Estimate
    expires_ns: int | None
    mid: Decimal | None  # the token's mid when it arrived


@mypyc_attr(allow_interpreted_subclasses=True)
class KellyValueBetting(Bot):
    strategy_type = "directional"
    routing = "bot"
    signal_sources: ClassVar[tuple[SignalSource, ...]] = ("model",)
    params_type: ClassVar[type[KellyValueBettingParams]] = KellyValueBettingParams
    skips_tops = True

    def __init__(
        self,
        config: BotConfig,
        venue: VenueConfig,
        id_namespace: str | None = None,
        model_source: ModelSource | None = None,
    ) -> None:
        super().__init__(config, venue, id_namespace)
        self.model_source: ModelSource = (
            model_source if model_source is not None else default_model_source(self.params.model_name)
        )
        self.model: CalibrationModel | None = None
        self.model_version: str | None = None
        self.cash: Decimal = self.params.bankroll_usdc
        self.spent: dict[str, Decimal] = {}  # token -> what its held shares cost (price + fees)
        self.forecasts: dict[str, Forecast] = {}  # token -> the forecast published for it
        self.reload_model()

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        super().bind(config, venue)
        self.params: KellyValueBettingParams = config.params_as(self.params_type)

    # ------------------------------------------------------------------ model

    def reload_model(self) -> bool:
        """Swap to the promoted version when it changed; True when it did. A version that cannot be
        read keeps the current model (the next check tries again)."""
        try:
            version = self.model_source.current_version()
            if version is None or version == self.model_version:
                return False
            model = self.model_source.load(version)
        except (OSError, ValueError, LookupError):
            return False
        self.model, self.model_version = model, version
        return True

    def _on_timer(self, now_ms: int) -> list[OrderIntent]:
        self.reload_model()
        self.schedule(now_ms + self.params.reload_interval_ms)
        return []

    def _on_signal(self, signal: Signal) -> list[OrderIntent]:
        info = self.markets.get(signal.market)
        if info is None or signal.probability is None or signal.asset_id not in info.token_ids:
            return []
        p = signal.probability.quantize(PROBABILITY_STEP)
        for token, prob in token_probabilities(info, signal.asset_id, p):
            estimate = Estimate(prob, "model", signal.model_version, signal.rationale, signal.signal_id)
            tob = self.books.get(token)
            self.forecasts[token] = Forecast(
                estimate, signal.expires_ns, tob.mid if tob is not None else None
            )
        out: list[OrderIntent] = []
        for token in info.token_ids:
            tob = self.books.get(token)
            if tob is not None:
                out += self._on_book(tob)
        return out

    def estimate(self, info: MarketInfo, asset_id: str, tob: TopOfBook) -> Estimate | None:
        """The probability that `asset_id` pays 1: its published forecast while unexpired and the mid
        within `forecast_max_drift` of the mid it came with, else the model's (None without a model,
        mid or end date)."""
        published = self.forecasts.get(asset_id)
        if published is not None:
            expired = published.expires_ns is not None and self.clock_ms * 1_000_000 >= published.expires_ns
            moved = (
                published.mid is not None
                and tob.mid is not None
                and abs(tob.mid - published.mid) > self.params.forecast_max_drift
            )
            if not (expired or moved):
                return published.estimate
            del self.forecasts[asset_id]
        model = self.model
        if model is None or tob.mid is None or info.end_date_ms is None:
            return None
        days = (info.end_date_ms - self.clock_ms) / DAY_MS
        if days <= 0:
            return None
        p = probability(model, float(tob.mid), days, info.category)
        return Estimate(Decimal(p).quantize(PROBABILITY_STEP), "model", self.model_version, "")

    def model_note(self, info: MarketInfo, tob: TopOfBook) -> str:
        """The model's features for the intent's cause (written only when an order goes out)."""
        days = ((info.end_date_ms or 0) - self.clock_ms) / DAY_MS
        return f"mid {tob.mid}, {days:.1f} days to end, category {info.category}"

    # ------------------------------------------------------------------ money

    def equity(self) -> Decimal:
        """Cash plus what is held at its mid (at cost while no mid is known)."""
        total = self.cash
        for token, shares in self.inventory.items():
            tob = self.books.get(token)
            if tob is not None and tob.mid is not None:
                total += shares * tob.mid
            else:
                total += self.spent.get(token, ZERO)
        return total

    def locked(self) -> Decimal:
        """Capital tied up in what is held (its cost)."""
        return sum(self.spent.values(), ZERO)

    def _hold(self, fill: ExecutionReport) -> None:
        """Every fill (of an order tracked or not) moves the cash and the cost of what is held."""
        super()._hold(fill)
        qty = fill.last_qty
        px = fill.last_px if fill.last_px is not None else fill.order_price
        token = fill.asset_id
        if fill.side == "BUY":
            self.cash -= px * qty + fill.fee
            self.spent[token] = self.spent.get(token, ZERO) + px * qty + fill.fee
            return
        self.cash += px * qty - fill.fee
        left = self.held(token)
        if left <= 0:
            self.spent.pop(token, None)
        else:
            self.spent[token] = self.spent.get(token, ZERO) * left / (left + qty)

    def on_market(self, info: MarketInfo) -> list[OrderIntent]:
        if (info.closed or info.winning_asset_id is not None) and info.condition_id in self.markets:
            self.settle(info)
        return super().on_market(info)

    def settle(self, info: MarketInfo) -> None:
        """Resolution: the winning token pays 1, the others 0 (the venue's outcome prices when no winner
        is named; the last mid while neither is known)."""
        for i, token in enumerate(info.token_ids):
            shares = self.held(token)
            self.spent.pop(token, None)
            if shares == 0:
                continue
            if info.winning_asset_id is not None:
                payout = ONE if token == info.winning_asset_id else ZERO
            elif info.outcome_prices is not None and i < len(info.outcome_prices):
                payout = info.outcome_prices[i]
            else:
                tob = self.books.get(token)
                payout = tob.mid if tob is not None and tob.mid is not None else ZERO
            self.cash += shares * payout

    # ------------------------------------------------------------------ decisions

    def wants_tops(self) -> bool:
        """A top matters with a model (p for every token), a published forecast, or before the first
        one (which schedules the reload timer); otherwise `estimate` has nothing to say."""
        return self.next_timer_ms is None or self.model is not None or bool(self.forecasts)

    def _on_book(self, tob: TopOfBook) -> list[OrderIntent]:
        if self.next_timer_ms is None:
            self.schedule(self.clock_ms + self.params.reload_interval_ms)
        asset_id = tob.asset_id
        info = self.token_market[asset_id]
        if tob.stale or not self.tradable(info):
            return []
        for order in self.orders.values():
            if order.asset_id == asset_id:
                return []  # one order per token at a time
        estimate = self.estimate(info, asset_id, tob)
        if estimate is None:
            return []
        fee_rate = self.fee_rate(info)
        held = self.held(asset_id)
        if held > 0 and tob.best_bid is not None:
            bid = tob.best_bid
            if estimate.probability < bid - venue_taker_fee(ONE, bid, fee_rate) - self.exit_margin():
                return self._sell(info, asset_id, tob, held, estimate)
        return self._buy(info, asset_id, tob, held, fee_rate, estimate)

    def exit_margin(self) -> Decimal:
        """How far below the bid net of fee p must fall before the bot sells (0: as soon as it is)."""
        return ZERO

    def entry_allowed(self, info: MarketInfo, asset_id: str, estimate: Estimate, cost: Decimal) -> bool:
        """Further conditions on an entry with an edge (Bot 10's annualised return)."""
        return True

    def capital_room(self, asset_id: str) -> Decimal:
        """Cost the bot may still put into the market of `asset_id`: max_position_usdc per market."""
        spent = self.spent
        in_market = sum((spent.get(token, ZERO) for token in self.token_market[asset_id].token_ids), ZERO)
        return self.config.max_position_usdc - in_market

    def _buy(
        self,
        info: MarketInfo,
        asset_id: str,
        tob: TopOfBook,
        held: Decimal,
        fee_rate: Decimal,
        estimate: Estimate,
    ) -> list[OrderIntent]:
        ask = tob.best_ask
        params = self.params
        if ask is None or not params.min_price <= ask < params.max_price:
            return []
        p = estimate.probability
        cost = share_cost(ask, fee_rate)
        if p - cost <= params.min_edge:
            return []
        if ask >= params.coin_flip_from and p <= params.coin_flip_min_probability:
            return []
        if not self.entry_allowed(info, asset_id, estimate, cost):
            return []
        stake = kelly_stake(p, ask, fee_rate, self.equity(), params.kelly_fraction, held)
        if isinstance(stake, Denial):
            return []
        shares = stake.shares
        if tob.best_ask_size is not None:
            shares = min(shares, tob.best_ask_size)
        room = self.capital_room(asset_id)
        shares = round_size(min(shares, room / cost) if room > 0 else ZERO)
        if shares < SIZE_STEP or shares * ask < self.venue.min_marketable_usdc:
            return []
        if held == 0 and shares * cost < self.config.min_position_usdc:
            return []
        intent = self.place(asset_id, "BUY", ask, shares, order_type="FAK", probability=p)
        return [self._with_cause(intent, estimate, info, tob)] if intent is not None else []

    def _sell(
        self, info: MarketInfo, asset_id: str, tob: TopOfBook, held: Decimal, estimate: Estimate
    ) -> list[OrderIntent]:
        bid = tob.best_bid
        assert bid is not None
        shares = held if tob.best_bid_size is None else min(held, tob.best_bid_size)
        shares = round_size(shares)
        if shares < SIZE_STEP or shares * bid < self.venue.min_marketable_usdc:
            return []  # too small to sell: held to resolution
        intent = self.place(asset_id, "SELL", bid, shares, order_type="FAK", probability=estimate.probability)
        if intent is None:
            return []
        exit_note = f"edge gone: p {estimate.probability} < bid {bid} net of fee"
        return [self._with_cause(intent, estimate, info, tob, exit_note)]

    def _with_cause(
        self, intent: OrderIntent, estimate: Estimate, info: MarketInfo, tob: TopOfBook, prefix: str = ""
    ) -> OrderIntent:
        note = estimate.note or self.model_note(info, tob)
        note = f"{prefix}; {note}" if prefix else note
        cause = IntentCause(
            source=estimate.source,
            model_version=estimate.version,
            probability=estimate.probability,
            note=note,
            signal_id=estimate.signal_id,
        )
        return msgspec.structs.replace(intent, cause=cause)
