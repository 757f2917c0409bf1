"""News items -> signal.news: the same path in the news flow and in `pets run`'s simulator run.

For each item (only a story's first sighting: later sources of the same story add attention, not a
second trade), its title + summary is matched to the open markets (matching.py, at the item's first
sighting); for each match a forecast of the market's YES (forecaster.py: the LLM or the baseline) at
the YES token's latest mid gives the direction (buy YES when q > price, else NO) and the probability;
the signal carries the bought token's mid at that sighting (`reference_mid`, Bot 4's "already priced?").
confidence = the feed's reliability x the match's strength (score / `full_score`, default `FULL_SCORE`,
at most 1); the forecaster's own confidence is in the rationale (a model's word on itself sizes
nothing). An item flagged as an injection attempt yields a signal with no direction and no confidence
(attention only).
`AttentionFeatures`: per market, news items over 5 min, 1 h and 24 h against the 24 h rate, the YES
mid's move and realised volatility over 5 min, and the shares traded over 5 min and 1 h (features.news).
"""

from __future__ import annotations

import hashlib
import itertools
import statistics
from array import array
from bisect import bisect_right
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from mypy_extensions import mypyc_attr

from pets.pipelines.news.forecaster import Forecaster
from pets.pipelines.news.matching import Market, MarketIndex
from pets.schemas.market_data import LastTradePrice, MarketInfo, TopOfBook
from pets.schemas.signals import NewsAttention, NewsItem, Signal
from pets.venue.units import MID_SCALE, mid_units

FULL_SCORE = 20.0  # a match scoring this (BM25 x re-rank) counts fully
SIGNAL_TTL_MS = 90_000  # the news edge window
TOP_MARKETS = 3
CONFIDENCE_STEP = Decimal("0.0001")
STORIES_KEPT = 10_000


def market_from_info(info: MarketInfo) -> Market:
    text = " ".join([info.question, info.question, *(o for o in info.outcomes if o not in ("Yes", "No")),
                     info.slug.replace("-", " "), info.category])  # fmt: skip
    return Market(info.condition_id, info.question, text, None, None)


@mypyc_attr(allow_interpreted_subclasses=True)  # snapshotted by the news flow (pets.native)
class NewsSignaller:
    """Keeps the open markets (md.markets) and their latest mids (md.tob); turns items into Signals."""

    def __init__(self, forecaster: Forecaster, reliability: Mapping[str, Decimal] | None = None,
                 threshold: float | None = None, full_score: float = FULL_SCORE) -> None:  # fmt: skip
        self.forecaster = forecaster
        self.reliability = dict(reliability or {})
        self.threshold = threshold
        self.full_score = full_score  # BM25 scores grow with the corpus: a universe of 25 scores lower
        self.markets: dict[str, MarketInfo] = {}
        self.mids: dict[str, Decimal] = {}
        self.index: MarketIndex | None = None
        self.counts: dict[str, int] = {}
        self.attention = AttentionFeatures()
        self.not_yes: set[str] = set()  # a market's tokens after its first: attention reads no mid of theirs
        self.story_markets: OrderedDict[str, tuple[str, ...]] = OrderedDict()  # story -> matched markets

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A signaller from an older snapshot gets the attributes added since."""
        for name, value in {"not_yes": set(), **state}.items():
            setattr(self, name, value)

    def on_market(self, info: MarketInfo) -> None:
        self.not_yes.update(info.token_ids[1:])
        open_now = info.active and not info.closed
        known = info.condition_id in self.markets
        if open_now:
            self.markets[info.condition_id] = info
        elif known:
            del self.markets[info.condition_id]
        if open_now != known:
            self.index = None  # rebuilt on the next item

    def on_book(self, tob: TopOfBook) -> None:
        mid = tob.mid
        if mid is not None:
            self.on_mid(tob.asset_id, tob.ts_ms, mid)

    def on_mid(self, asset: str, ts_ms: int, mid: Decimal, changed: bool = True) -> int:
        """`on_book` from a top's fields (the embedded loop has read them); `changed` False: the token's
        mid here is `mid` already (its last top showed the same one), only the history's horizon moves.
        Returns the venue time from which a top of the token showing the same mid changes something
        here (NO_TRIM_MS: never), so the caller may skip those before it."""
        if changed:
            self.mids[asset] = mid
        if asset in self.not_yes:  # books may come before their market: kept until known
            return NO_TRIM_MS
        return self.attention.on_mid(asset, ts_ms, mid)

    def on_trade(self, trade: LastTradePrice) -> None:
        try:
            ts_ms, size = int(trade.timestamp), Decimal(trade.size)
        except (ValueError, InvalidOperation):  # the venue's strings; a bad print counts nothing
            self._count("bad_trade")
            return
        if size.is_finite() and size > 0:
            self.attention.on_trade(trade.market, ts_ms, size)

    def warm(self) -> None:
        """Build the market index now (it is built on first use otherwise)."""
        self._index()

    def _index(self) -> MarketIndex | None:
        if self.index is None and self.markets:
            markets = [market_from_info(m) for m in self.markets.values()]
            threshold = self.threshold
            self.index = MarketIndex(markets) if threshold is None else MarketIndex(markets, threshold)
        return self.index

    def on_item(self, item: NewsItem) -> list[Signal]:
        return self.process(item)[0]

    def process(self, item: NewsItem) -> tuple[list[Signal], list[NewsAttention]]:
        """The item's signals and the attention features of the markets it is about (a later sighting
        of a story: the markets its first sighting matched, attention only): `match`, then
        `signal_for` each market, as the news flow does across its matcher key and market keys."""
        signals, features = [], []
        for market, score in self.match(item):
            signal, feature = self.signal_for(item, market, self.markets.get(market), score)
            features.append(feature)
            if signal is not None:
                signals.append(signal)
        return signals, features

    def match(self, item: NewsItem) -> list[tuple[str, float]]:
        """The markets (condition ids) the item is about, with its match score: a story's first
        sighting is matched (top TOP_MARKETS) and its markets recorded for the story; a later sighting
        gets the markets its first sighting matched (score 0: attention only). Needs every open market
        (the index) and no price."""
        if item.sighting > 1:
            self._count("later_sighting")
            return [(m, 0.0) for m in self.story_markets.get(item.story_id or "", ())]
        index = self._index()
        if index is None:
            return []
        matches = index.match(f"{item.title}. {item.summary[:300]}", TOP_MARKETS)
        if not matches:
            self._count("unmatched")
            return []
        self.story_markets[item.story_id or item.item_id] = tuple(m.condition_id for m in matches)
        if len(self.story_markets) > STORIES_KEPT:
            self.story_markets.popitem(last=False)
        return [(m.condition_id, m.score) for m in matches]

    def signal_for(
        self, item: NewsItem, market: str, info: MarketInfo | None, score: float,
        mids: Mapping[str, Decimal] | None = None,
    ) -> tuple[Signal | None, NewsAttention]:  # fmt: skip
        """One matched market of the item: its attention features, and at a first sighting its signal
        (None: not a binary market, no price, no forecast). `info` is the market as the matcher knew
        it (None: closed since the first sighting), `mids` the token mids the forecast reads (default
        the latest: the news flow's market keys pass those in force at the item's time)."""
        seen_ms = item.received_ns // 1_000_000
        yes_asset = info.token_ids[0] if info is not None and info.token_ids else None
        feature = self.attention.add(market, seen_ms, yes_asset)
        if item.sighting > 1 or info is None or len(info.token_ids) != 2:
            return None, feature
        known = self.mids if mids is None else mids
        yes, no = info.token_ids
        price = known.get(yes)
        if price is None:
            self._count("no_price")
            return None, feature
        forecast = self.forecaster.forecast(item, info, price, seen_ms)
        if forecast is None:
            self._count("no_forecast")
            return None, feature
        strength = Decimal(str(min(score / self.full_score, 1.0)))
        confidence = self.reliability.get(item.source, Decimal(1)) * strength
        q = forecast.probability
        up = q >= price
        key = f"{item.item_id}|{info.condition_id}".encode()
        signal_id = hashlib.blake2b(key, digest_size=8).hexdigest()
        asset = None if forecast.suspect else (yes if up else no)
        self._count("suspect" if forecast.suspect else "signal")
        return Signal(
            signal_id=f"news-{signal_id}", source="news", market=info.condition_id,
            asset_id=asset,
            side=None if forecast.suspect else "BUY",
            probability=None if forecast.suspect else (q if up else 1 - q),
            confidence=Decimal(0) if forecast.suspect else confidence.quantize(CONFIDENCE_STEP),
            rationale=f"{item.source}: {item.title[:120]} | match {score:.1f} | "
                      f"{forecast.rationale} (confidence {forecast.confidence})",
            ts_ns=item.received_ns, expires_ns=item.received_ns + SIGNAL_TTL_MS * 1_000_000,
            model_version=forecast.forecaster,
            reference_mid=price if asset == yes else known.get(no) if asset == no else None,
        ), feature  # fmt: skip


WINDOWS_MS = {"5m": 300_000, "1h": 3_600_000, "24h": 86_400_000}
MOVE_WINDOW_MS: Final = 300_000  # Final: a constant when compiled, not a module look-up per top
VOLUME_WINDOWS_MS = {"5m": 300_000, "1h": 3_600_000}
NO_TRIM_MS: Final = (1 << 62) - 1  # later than any horizon (and a short int when compiled)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class MidHistory:
    """The mids of one token as they changed: (venue ms, mid in micro-units), oldest first, as an
    int64 and an int32 array (a mid is at most MID_SCALE): appended per top without a tuple, and a
    flow's snapshot pickles each array as one bytes copy. Per top (every YES top of book) the usual
    case costs two comparisons: the same mid object as the last one (mids are cached Decimals) and a
    horizon before `trim_ms`."""

    ts: array[int] = field(default_factory=lambda: array("q"))
    mids: array[int] = field(default_factory=lambda: array("i"))
    last: Decimal | None = None  # the mid of the latest `add` (whose micro-units are mids[-1])
    trim_ms: int = NO_TRIM_MS  # ts[1]: a horizon before it forgets nothing

    def __getstate__(self) -> dict[str, Any]:
        """(Compiled, a class with its own `__setstate__` needs its own `__getstate__` to pickle.)"""
        return {"ts": self.ts, "mids": self.mids, "last": self.last, "trim_ms": self.trim_ms}

    def __setstate__(self, state: Any) -> None:
        """Restored from a snapshot (`pets.native.rebuild`, pickle: a dict) or an older plain pickle
        (an interpreted slots object: (None, dict)); one from before `last` and `trim_ms` gets them."""
        attrs: dict[str, Any] = state[1] if isinstance(state, tuple) else state
        self.ts, self.mids = attrs["ts"], attrs["mids"]
        self.last = attrs.get("last")
        self.trim_ms = attrs.get("trim_ms", self.ts[1] if len(self.ts) > 1 else NO_TRIM_MS)

    def add(self, ts_ms: int, mid: Decimal, horizon_ms: int) -> None:
        """Record `mid` when it changed, and forget what no time after `horizon_ms` can ask for."""
        if mid is not self.last:
            units = mid_units(mid)
            times, mids = self.ts, self.mids
            if not mids or mids[-1] != units:
                times.append(ts_ms)
                mids.append(units)
                if len(times) == 2:
                    self.trim_ms = ts_ms
            self.last = mid
        if horizon_ms >= self.trim_ms:
            times, mids = self.ts, self.mids
            cut = bisect_right(times, horizon_ms) - 1  # the last entry at or before the horizon stays
            del times[:cut], mids[:cut]
            self.trim_ms = times[1] if len(times) > 1 else NO_TRIM_MS

    def until(self, at_ms: int) -> list[Decimal]:
        """The mids recorded at or before `at_ms`, oldest first."""
        return [Decimal(units) / MID_SCALE for units in self.mids[: bisect_right(self.ts, at_ms)]]


@mypyc_attr(allow_interpreted_subclasses=True)
class AttentionFeatures:
    """Per market: news volume over rolling windows against its own 24 h rate, and the YES mid's move
    and realised volatility over the last 5 minutes (from the tops of book it is shown), and the shares
    traded over 5 min and 1 h (from the last_trade_price prints it is shown)."""

    def __init__(self) -> None:
        self.times: dict[str, list[int]] = {}
        self.mids: dict[str, MidHistory] = {}  # asset -> its mid changes over the last MOVE_WINDOW_MS
        self.trades: dict[str, deque[tuple[int, Decimal]]] = {}  # market -> (venue ms, shares)

    def on_mid(self, asset: str, ts_ms: int, mid: Decimal) -> int:
        """Record the mid; returns the venue time from which the same mid again trims the history."""
        history = self.mids.get(asset)
        if history is None:
            history = self.mids[asset] = MidHistory()
        history.add(ts_ms, mid, ts_ms - MOVE_WINDOW_MS)
        trim_ms = history.trim_ms
        return NO_TRIM_MS if trim_ms == NO_TRIM_MS else trim_ms + MOVE_WINDOW_MS

    def on_trade(self, market: str, ts_ms: int, size: Decimal) -> None:
        trades = self.trades.setdefault(market, deque())
        trades.append((ts_ms, size))
        while trades[0][0] <= ts_ms - VOLUME_WINDOWS_MS["1h"]:
            trades.popleft()

    def add(self, market: str, at_ms: int, yes_asset: str | None = None) -> NewsAttention:
        times = [t for t in self.times.get(market, []) if t > at_ms - WINDOWS_MS["24h"]]
        times.append(at_ms)
        self.times[market] = times
        counts = {name: sum(1 for t in times if t > at_ms - span) for name, span in WINDOWS_MS.items()}
        daily = counts["24h"] / WINDOWS_MS["24h"]
        mids = self.mids.get(yes_asset or "")
        history = mids.until(at_ms) if mids is not None else []
        momentum = history[-1] - history[0] if history else None
        changes = [float(b - a) for a, b in itertools.pairwise(history)]
        vol = statistics.pstdev(changes) if len(changes) >= 2 else None
        trades = self.trades.get(market, ())
        volume = {name: sum((n for t, n in trades if at_ms - span < t <= at_ms), Decimal(0))
                  for name, span in VOLUME_WINDOWS_MS.items()}  # fmt: skip
        per_5m = volume["1h"] * VOLUME_WINDOWS_MS["5m"] / VOLUME_WINDOWS_MS["1h"]
        return NewsAttention(
            market=market, ts_ns=at_ms * 1_000_000, news_5m=counts["5m"], news_1h=counts["1h"],
            news_24h=counts["24h"], news_5m_vs_24h=counts["5m"] / (daily * WINDOWS_MS["5m"]),
            news_1h_vs_24h=counts["1h"] / (daily * WINDOWS_MS["1h"]), momentum_5m=momentum,
            realized_vol_5m=vol, volume_5m=volume["5m"], volume_1h=volume["1h"],
            volume_5m_vs_1h=float(volume["5m"] / per_5m) if per_5m else 0.0,
        )  # fmt: skip
