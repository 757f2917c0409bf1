"""`pets bench news --latency`: from an item appearing in a feed to an order intent, in one process
with the local feed and LLM servers: conditional GET + parse (FeedPoller), match + forecast
(NewsSignaller with the real `openai` client), Bot 4's decision. The Kafka hops between the news,
bots and risk flows are not in it (the market-state benches measure those)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from email.utils import formatdate
from typing import Any
from xml.sax.saxutils import escape

import httpx
import msgspec

from pets.bots.news_scalping import NewsScalping
from pets.pipelines.news.feed_server import serve_feeds
from pets.pipelines.news.feeds import FeedConfig, FeedPoller
from pets.pipelines.news.forecaster import LlmForecaster, LlmSettings
from pets.pipelines.news.llm_server import serve_llm
from pets.pipelines.news.signals import NewsSignaller
from pets.pipelines.polymarket.gamma import MarketParseError, parse_market
from pets.schemas.config import PetsConfig
from pets.schemas.market_data import MarketInfo, TopOfBook


def rss(headline: str, guid: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>bench</title><link>http://bench</link>'
        f"<description>bench</description><item><title>{escape(headline)}</title><guid>{guid}</guid>"
        f"<pubDate>{formatdate(time.time(), usegmt=True)}</pubDate></item></channel></rss>"
    ).encode()


def open_markets(raws: Iterable[Mapping[str, Any]]) -> list[MarketInfo]:
    """The dump's binary markets as if open now (the bench needs a universe, not its history)."""
    out = []
    for raw in raws:
        try:
            info = parse_market(raw)
        except MarketParseError:
            continue
        if len(info.token_ids) == 2:
            out.append(msgspec.structs.replace(info, active=True, closed=False, accepting_orders=True))
    return out


def book(token: str, market: str, bid: str, ask: str, ts_ms: int) -> TopOfBook:
    b, a = Decimal(bid), Decimal(ask)
    mid, size = (b + a) / 2, Decimal(1000)
    return TopOfBook(token, market, ts_ms, b, a, size, size, mid, mid, a - b, Decimal(0), Decimal("0.01"),
                     False, None, None, None, 1)  # fmt: skip


def feed_to_intent(
    markets: Sequence[MarketInfo], headlines: Sequence[str], config: PetsConfig
) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    bot_config = config.bot("bot_04")
    bot = NewsScalping(msgspec.structs.replace(bot_config, categories=()), config.system.venue)
    bot.use_zones(config.zones)
    with serve_feeds({"/bench.rss": b""}) as feeds, serve_llm() as llm:
        forecaster = LlmForecaster(LlmSettings(base_url=llm.base_url, model="bench", api_key="bench",
                                               requests_per_min=10**6, tokens_per_min=10**9))  # fmt: skip
        signaller = NewsSignaller(forecaster)
        for info in markets:
            signaller.on_market(info)
            bot.on_market(info)
            yes, no = info.token_ids
            for tob in (book(yes, info.condition_id, "0.29", "0.30", now_ms),
                        book(no, info.condition_id, "0.70", "0.71", now_ms)):  # fmt: skip
                signaller.on_book(tob)
                bot.on_top_of_book(tob)
        started = time.perf_counter()
        signaller.warm()  # the index is built on first use: outside the timing
        build_s = time.perf_counter() - started
        feed = FeedConfig(url=feeds.url + "/bench.rss", source="bench")
        poller = FeedPoller([feed], httpx.Client(timeout=10))
        latencies, signals, intents = [], 0, 0
        for n, headline in enumerate(headlines):
            feeds.set_feed("/bench.rss", rss(headline, f"bench-{n}"))
            t0 = time.perf_counter()
            out = []
            for item in poller.poll(poller.feeds[0]).items:
                for signal in signaller.on_item(item):
                    signals += 1
                    out += bot.on_signal(signal)
            elapsed = time.perf_counter() - t0
            if out:
                intents += len(out)
                latencies.append(elapsed * 1000)
                bot.orders.clear()  # the bench's orders never reach a venue
        poller.close()
    latencies.sort()

    def pct(q: float) -> float | None:
        return round(latencies[min(int(q * len(latencies)), len(latencies) - 1)], 2) if latencies else None

    return {
        "markets": len(markets), "index_build_s": round(build_s, 2), "items": len(headlines),
        "signals": signals, "items_to_an_intent": len(latencies), "intents": intents,
        "feed_to_intent_p50_ms": pct(0.50), "feed_to_intent_p99_ms": pct(0.99),
        "llm_requests": forecaster.stats.requests,
        "not_traded": dict(sorted(bot.ignored.items())),
    }  # fmt: skip
