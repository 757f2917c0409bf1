"""News items -> signal.news: the same path in the news flow and in `pets run`'s simulator run.

For each item (only a story's first sighting: later sources of the same story add attention, not a
second trade), its title + summary is matched to the open markets (matching.py, at the item's first
sighting); for each match a forecast of the market's YES (forecaster.py: the LLM or the baseline) at
the YES token's latest mid gives the direction (buy YES when q > price, else NO) and the probability.
confidence = the feed's reliability x the match's strength (score / `FULL_SCORE`, at most 1); the
forecaster's own confidence is in the rationale (a model's word on itself sizes nothing). An item
flagged as an injection attempt yields a signal with no direction and no confidence (attention only).
`AttentionFeatures` counts items per market over 5 min, 1 h and 24 h.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal

from pets.pipelines.news.forecaster import Forecaster
from pets.pipelines.news.matching import Market, MarketIndex
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.signals import NewsItem, Signal

FULL_SCORE = 20.0  # a match scoring this (BM25 x re-rank) counts fully
SIGNAL_TTL_MS = 90_000  # the news edge window
TOP_MARKETS = 3
CONFIDENCE_STEP = Decimal("0.0001")


def market_from_info(info: MarketInfo) -> Market:
    text = " ".join([info.question, info.question, *(o for o in info.outcomes if o not in ("Yes", "No")),
                     info.slug.replace("-", " "), info.category])  # fmt: skip
    return Market(info.condition_id, info.question, text, None, None)


class NewsSignaller:
    """Keeps the open markets (md.markets) and their latest mids (md.tob); turns items into Signals."""

    def __init__(self, forecaster: Forecaster, reliability: Mapping[str, Decimal] | None = None,
                 threshold: float | None = None) -> None:  # fmt: skip
        self.forecaster = forecaster
        self.reliability = dict(reliability or {})
        self.threshold = threshold
        self.markets: dict[str, MarketInfo] = {}
        self.mids: dict[str, Decimal] = {}
        self.index: MarketIndex | None = None
        self.counts: dict[str, int] = {}

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def on_market(self, info: MarketInfo) -> None:
        open_now = info.active and not info.closed
        known = info.condition_id in self.markets
        if open_now:
            self.markets[info.condition_id] = info
        elif known:
            del self.markets[info.condition_id]
        if open_now != known:
            self.index = None  # rebuilt on the next item

    def on_book(self, tob: TopOfBook) -> None:
        if tob.mid is not None:
            self.mids[tob.asset_id] = tob.mid

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
        if item.sighting > 1:
            self._count("later_sighting")
            return []
        index = self._index()
        if index is None:
            return []
        matches = index.match(f"{item.title}. {item.summary[:300]}", TOP_MARKETS)
        if not matches:
            self._count("unmatched")
            return []
        seen_ms = item.received_ns // 1_000_000
        out = []
        for match in matches:
            info = self.markets[match.condition_id]
            if len(info.token_ids) != 2:
                continue
            yes, no = info.token_ids
            price = self.mids.get(yes)
            if price is None:
                self._count("no_price")
                continue
            forecast = self.forecaster.forecast(item, info, price, seen_ms)
            if forecast is None:
                self._count("no_forecast")
                continue
            strength = Decimal(str(min(match.score / FULL_SCORE, 1.0)))
            confidence = self.reliability.get(item.source, Decimal(1)) * strength
            q = forecast.probability
            up = q >= price
            key = f"{item.item_id}|{info.condition_id}".encode()
            signal_id = hashlib.blake2b(key, digest_size=8).hexdigest()
            self._count("suspect" if forecast.suspect else "signal")
            out.append(Signal(
                signal_id=f"news-{signal_id}", source="news", market=info.condition_id,
                asset_id=None if forecast.suspect else (yes if up else no),
                side=None if forecast.suspect else "BUY",
                probability=None if forecast.suspect else (q if up else 1 - q),
                confidence=Decimal(0) if forecast.suspect else confidence.quantize(CONFIDENCE_STEP),
                rationale=f"{item.source}: {item.title[:120]} | match {match.score:.1f} | "
                          f"{forecast.rationale} (confidence {forecast.confidence})",
                ts_ns=item.received_ns, expires_ns=item.received_ns + SIGNAL_TTL_MS * 1_000_000,
                model_version=forecast.forecaster,
            ))  # fmt: skip
        return out


WINDOWS_MS = {"5m": 300_000, "1h": 3_600_000, "24h": 86_400_000}


class AttentionFeatures:
    """News volume per market over rolling windows, and each window's ratio to the 24 h rate."""

    def __init__(self) -> None:
        self.times: dict[str, list[int]] = {}

    def add(self, market: str, at_ms: int) -> dict[str, float]:
        times = [t for t in self.times.get(market, []) if t > at_ms - WINDOWS_MS["24h"]]
        times.append(at_ms)
        self.times[market] = times
        counts = {name: sum(1 for t in times if t > at_ms - span) for name, span in WINDOWS_MS.items()}
        daily = counts["24h"] / WINDOWS_MS["24h"]
        features: dict[str, float] = {f"news_{name}": float(n) for name, n in counts.items()}
        for name in ("5m", "1h"):
            expected = daily * WINDOWS_MS[name]
            features[f"news_{name}_vs_24h"] = counts[name] / expected if expected else 0.0
        return features
