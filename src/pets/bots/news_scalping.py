"""Bot 4, News Scalping (aggressive): trades the first seconds after a news item, before the book
has repriced, and gets out fast.

On a news signal (signal.news: the item matched to this market, its direction from the forecast or
the item's polarity, `confidence` = the source's reliability weight x the match's confidence):
- the item must be young: `ts_ns` (its first sighting) at most `max_news_age_s` before the venue
  clock (the product's edge window: 30-90 s); older items are ignored and counted;
- "already priced?": the signalled token's mid must not have risen by more than `max_price_move`
  since the item appeared (`reference_mid`: the mid the news flow forecast at, at the item's first
  sighting; a SELL signal's complement at 1 - that mid, the venue's two books being one);
- a marketable limit (FAK) at the best ask plus at most `max_slippage_ticks` ticks, never above the
  signal's probability (no edge left there), in a zone the `news_scalping` rules allow;
- size: `max_position_usdc` x confidence (reliability weighs the size), at least `min_position_usdc`.
Exit of what it holds: take-profit (mid >= entry + `take_profit`), stop-loss (mid <= entry -
`stop_loss`) or `hold_s` after the entry. Passive first: a post-only sell at the best ask; after
`passive_exit_s` unfilled, it is cancelled and the rest sold FAK at the best bid. A residue below the
market's minimum order size (a partly filled exit) is held to resolution.
One instance per market (routing "market"), one position per market at a time. Tops matter only
to a position's exit, so the embedded loop keeps them from an instance holding none (`wants_tops`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from mypy_extensions import mypyc_attr

from pets.bots.base import Bot, OwnOrder
from pets.schemas.config import BotConfig, NewsScalpingParams, VenueConfig
from pets.schemas.market_data import TopOfBook
from pets.schemas.orders import ExecutionReport, OrderIntent
from pets.schemas.signals import Signal, SignalSource
from pets.venue.precision import SIZE_STEP, passive_price, round_size

MS_PER_S = 1000
NS_PER_MS = 1_000_000


@mypyc_attr(allow_interpreted_subclasses=True)
class NewsScalping(Bot):
    strategy_type = "directional"
    signal_sources: ClassVar[tuple[SignalSource, ...]] = ("news",)
    params_type: ClassVar[type[NewsScalpingParams]] = NewsScalpingParams
    skips_tops = True  # tops only move the exits of what it holds

    def __init__(self, config: BotConfig, venue: VenueConfig, id_namespace: str | None = None) -> None:
        super().__init__(config, venue, id_namespace)
        self.entries: dict[str, tuple[Decimal, int]] = {}  # token -> (average entry price, entry ms)
        self.exit_deadline: dict[str, int] = {}  # token -> when its passive exit turns aggressive
        self.crossing: set[str] = set()  # tokens whose passive exit is being cancelled to sell FAK
        self.ignored: dict[str, int] = {}  # why signals were not traded -> count

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        super().bind(config, venue)
        self.params: NewsScalpingParams = config.params_as(self.params_type)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a snapshot from before the signals carried `reference_mid` holds a mid history per token
        super().__setstate__({name: value for name, value in state.items() if name != "mids"})

    def wants_tops(self) -> bool:
        return bool(self.entries)  # `_on_book` only exits positions

    # ------------------------------------------------------------------ entry

    def _skip(self, why: str) -> list[OrderIntent]:
        self.ignored[why] = self.ignored.get(why, 0) + 1
        return []

    def _on_signal(self, signal: Signal) -> list[OrderIntent]:
        params = self.params
        info = self.markets.get(signal.market)
        if info is None or signal.asset_id is None or signal.side is None:
            return self._skip("no_direction")
        token = signal.asset_id
        if signal.side == "SELL":  # the item is bad for this token: buy its complement
            pair = self.pairs.get(info.condition_id)
            if pair is None:
                return self._skip("no_direction")
            token = pair[1] if token == pair[0] else pair[0]
        item_ms = signal.ts_ns // NS_PER_MS
        if self.clock_ms - item_ms > params.max_news_age_s * MS_PER_S:
            return self._skip("too_old")
        if signal.confidence < params.min_confidence:
            return self._skip("low_confidence")
        if not self.tradable(info) or any(o.market == info.condition_id for o in self.orders.values()):
            return self._skip("busy")
        if any(self.held(t) > 0 for t in info.token_ids):
            return self._skip("busy")
        tob = self.fresh_book(token)
        if tob is None or tob.best_ask is None or tob.mid is None:
            return self._skip("no_book")
        then = signal.reference_mid
        if then is not None and token != signal.asset_id:
            then = 1 - then  # the complement's mid: its book mirrors the signalled token's
        if then is not None and tob.mid - then > params.max_price_move:
            return self._skip("already_priced")
        p = signal.probability if signal.side == "BUY" else None
        if signal.side == "SELL" and signal.probability is not None:
            p = 1 - signal.probability
        limit = tob.best_ask + params.max_slippage_ticks * tob.tick_size
        if p is not None:
            cap = passive_price("BUY", p, tob.tick_size)
            if cap is None or tob.best_ask >= p:
                return self._skip("no_edge")
            limit = min(limit, cap)
        if not self.zone_allows(limit, probability=p):
            return self._skip("zone")
        budget = self.config.max_position_usdc * signal.confidence
        shares = round_size(budget / limit)
        if shares < SIZE_STEP or shares * limit < max(
            self.config.min_position_usdc, self.venue.min_marketable_usdc
        ):
            return self._skip("too_small")
        note = f"news age {(self.clock_ms - item_ms) / MS_PER_S:.1f} s, mid then {then} now {tob.mid}"
        intent = self.place(
            token, "BUY", limit, shares, order_type=params.order_type, probability=p,
            cause=self.cause_of(signal, p, note),
        )  # fmt: skip
        return [intent] if intent is not None else []

    # ------------------------------------------------------------------ bookkeeping

    def _on_book(self, tob: TopOfBook) -> list[OrderIntent]:
        return self._exit(tob.asset_id) if tob.asset_id in self.entries else []

    def _on_fill(self, order: OwnOrder, report: ExecutionReport) -> list[OrderIntent]:
        token = order.asset_id
        if order.side == "BUY":
            px = report.last_px if report.last_px is not None else order.price
            held = self.held(token)
            entry = self.entries.get(token)
            if entry is None:
                self.entries[token] = (px, self.clock_ms)
                self.schedule(self.clock_ms + self.params.hold_s * MS_PER_S)
            else:  # average in the partial fills of the entry
                before = held - report.last_qty
                self.entries[token] = ((entry[0] * before + px * report.last_qty) / held, entry[1])
        elif self.held(token) <= 0:
            self.entries.pop(token, None)
            self.exit_deadline.pop(token, None)
        return []

    def _on_order_gone(self, order: OwnOrder, why: str) -> list[OrderIntent]:
        token = order.asset_id
        if order.side == "SELL":
            self.exit_deadline.pop(token, None)
            if token in self.crossing:
                self.crossing.discard(token)
                return self._sell_now(token)
        return []

    def _on_timer(self, now_ms: int) -> list[OrderIntent]:
        out: list[OrderIntent] = []
        for token in list(self.entries):
            out += self._exit(token)
        return out

    # ------------------------------------------------------------------ exit

    def _exit(self, token: str) -> list[OrderIntent]:
        entry = self.entries.get(token)
        held = self.held(token)
        if entry is None or held <= 0:
            return []
        if held < self.token_market[token].min_order_size:
            self.entries.pop(token, None)  # a residue the venue takes no order for: held to resolution
            return []
        resting = [o for o in self.orders.values() if o.asset_id == token and o.side == "SELL"]
        if resting:
            deadline = self.exit_deadline.get(token)
            if deadline is not None and self.clock_ms >= deadline and token not in self.crossing:
                self.crossing.add(token)
                cancels = [self.cancel(o) for o in resting]
                return [c for c in cancels if c is not None]
            return []
        if any(o.asset_id == token for o in self.orders.values()):
            return []  # the entry is still working
        tob = self.fresh_book(token)
        if tob is None or tob.mid is None:
            return []
        params = self.params
        price, since = entry
        reason = ""
        if tob.mid >= price + params.take_profit:
            reason = "take_profit"
        elif tob.mid <= price - params.stop_loss:
            reason = "stop_loss"
        elif self.clock_ms >= since + params.hold_s * MS_PER_S:
            reason = "max_hold"
        if not reason:
            return []
        ask = tob.best_ask
        if ask is None:
            return self._sell_now(token)  # nothing to rest beside
        intent = self.place(token, "SELL", ask, held, order_type="GTC", post_only=True)
        if intent is None:
            return []
        self.exit_deadline[token] = self.clock_ms + params.passive_exit_s * MS_PER_S
        self.schedule(self.exit_deadline[token])
        self.ignored[f"exit_{reason}"] = self.ignored.get(f"exit_{reason}", 0) + 1
        return [intent]

    def _sell_now(self, token: str) -> list[OrderIntent]:
        held = self.held(token)
        tob = self.fresh_book(token)
        if held <= 0 or tob is None or tob.best_bid is None:
            return []
        shares = round_size(held if tob.best_bid_size is None else min(held, tob.best_bid_size))
        if shares < SIZE_STEP or shares * tob.best_bid < self.venue.min_marketable_usdc:
            return []
        intent = self.place(token, "SELL", tob.best_bid, shares, order_type="FAK")
        return [intent] if intent is not None else []
