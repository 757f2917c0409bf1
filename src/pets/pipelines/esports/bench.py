"""`pets bench esports`: frames per second through the esports path, and the latency from a frame at the
local feed server to Bot 2's intent.

- throughput: window responses (the feed's JSON, one frame each) decoded, parsed into snapshots, diffed
  into events, turned into signals by the win model and handed to Bot 2, in one process on one core;
- latency: the recorded games served in real time by the local live-stats server (feed_server.py), polled
  over HTTP by the poller as fast as it answers; for every intent, the time from the moment the server
  first serves the frame behind it (frame time + the feed's lag) to the intent leaving the bot. Fills
  are reported back at the intent's price at once, so the bot keeps trading (entries and exits).
The intents stay in the process (Bot 2 -> a list): Kafka's order.intent hop is not in this number.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

from pets.bots.esports_live import EsportsLiveEvents
from pets.pipelines.esports.feed_server import serve_livestats, window_json
from pets.pipelines.esports.lol_livestats import LiveStatsPoller, LolFrame, WindowParser
from pets.pipelines.esports.signals import Match, SignalMaker, link_markets
from pets.pipelines.esports.state import EventBuilder
from pets.pipelines.esports.winmodel import WinModel
from pets.pipelines.polymarket.http import JsonHttpClient
from pets.schemas.config import BotConfig, VenueConfig
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ExecutionReport, OrderIntent

TEAMS = ("100", "200")
FEED_LAG_MS = 500
MATCH = Match(match_id="m1", teams={"100": "Blue", "200": "Red"}, best_of=1)


def bench_market() -> MarketInfo:
    return MarketInfo(
        condition_id="bench-m1", market_id="bench-m1", question="LoL: Blue vs Red - Game 1 Winner",
        slug="bench-m1", category="esports", token_ids=("tok-blue", "tok-red"), outcomes=("Blue", "Red"),
        neg_risk=False, tick_size=Decimal("0.01"), min_order_size=Decimal(5), active=True, closed=False,
        accepting_orders=True,
    )  # fmt: skip


def _book(asset: str, bid: str, ask: str, ts_ms: int) -> TopOfBook:
    b, a = Decimal(bid), Decimal(ask)
    return TopOfBook(
        asset_id=asset, market="bench-m1", ts_ms=ts_ms, best_bid=b, best_ask=a, best_bid_size=Decimal(10_000),
        best_ask_size=Decimal(10_000), mid=(a + b) / 2, microprice=(a + b) / 2, spread=a - b,
        imbalance=Decimal(0), tick_size=Decimal("0.01"), stale=False, paired_asset_id=None, ask_sum=None,
        bid_sum=None, seq=1,
    )  # fmt: skip


class Pipeline:
    """Signals of one game and Bot 2 on its market (books near even), fills reported back at once."""

    def __init__(self, model: WinModel, bot_config: BotConfig, venue: VenueConfig, now_ms: int) -> None:
        info = bench_market()
        self.maker = SignalMaker(MATCH, link_markets(MATCH, [info]), model, "esports_win@bench")
        self.bot = EsportsLiveEvents(bot_config, venue)
        self.bot.on_market(info)
        self.bot.on_top_of_book(_book("tok-blue", "0.45", "0.47", now_ms))
        self.bot.on_top_of_book(_book("tok-red", "0.53", "0.55", now_ms))
        self.intents = 0

    def on_events(self, events: Sequence[Any]) -> list[OrderIntent]:
        out: list[OrderIntent] = []
        for event in events:
            for signal in self.maker.on_event(event):
                intents = self.bot.on_signal(signal)
                out += intents
                for intent in intents:
                    self.bot.on_execution_report(
                        ExecutionReport.of_order(
                            intent,
                            intent.size,
                            "fill",
                            ts_ns=signal.ts_ns,
                            n=1,
                            cum_qty=intent.size,
                            leaves_qty=Decimal(0),
                            last_qty=intent.size,
                            last_px=intent.price,
                            fee=Decimal(0),
                            source_ts_ms=self.bot.clock_ms,
                        )
                    )
        self.intents += len(out)
        return out


def throughput(
    games: Sequence[list[LolFrame]], model: WinModel, bot_config: BotConfig, venue: VenueConfig, passes: int
) -> dict[str, Any]:
    bodies = [
        [json.dumps(window_json("g1", "m1", TEAMS, [(f.frame_ts_ms, f)])).encode() for f in frames]
        for frames in games
    ]
    total = intents = 0
    seconds = 0.0
    for _ in range(passes):
        for frames in bodies:
            pipeline = Pipeline(model, bot_config, venue, 0)
            parser, builder = WindowParser(), EventBuilder("m1", "lol")
            start = time.perf_counter()
            for body in frames:
                _, _, parsed = parser.parse(msgspec.json.decode(body))
                received_ns = (parsed[0].frame_ts_ms + FEED_LAG_MS) * 1_000_000  # a fresh feed
                pipeline.on_events(builder.on_frames(parsed, received_ns))
            seconds += time.perf_counter() - start
            total += len(frames)
            intents += pipeline.intents
    return {
        "frames": total,
        "seconds": round(seconds, 3),
        "frames_per_s": round(total / seconds),
        "intents": intents,
    }


def latency(
    games: Sequence[list[LolFrame]],
    model: WinModel,
    bot_config: BotConfig,
    venue: VenueConfig,
    *,
    speed: float,
    lag_ms: int,
) -> dict[str, Any]:
    samples: list[float] = []
    polls = 0
    for frames in games:
        with serve_livestats(
            frames, game_id="g1", match_id="m1", teams=TEAMS, speed=speed, lag_ms=lag_ms
        ) as feed:
            poller = LiveStatsPoller(JsonHttpClient(feed.url, retries=0), "g1", stall_after_ms=60_000)
            pipeline = Pipeline(model, bot_config, venue, feed.start_ms)
            done = False
            deadline = time.monotonic() + (frames[-1].frame_ts_ms - frames[0].frame_ts_ms) / speed / 1000 + 10
            while not done and time.monotonic() < deadline:
                events = poller.poll()
                polls += 1
                for event in events:
                    for _ in pipeline.on_events([event]):
                        samples.append(time.time_ns() / 1e6 - ((event.frame_ts_ms or 0) + lag_ms))
                    done = done or event.event_type == "game_end"
    ordered = sorted(samples)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else float("nan")

    return {
        "speed": speed, "feed_lag_ms": lag_ms, "polls": polls, "intents_timed": len(samples),
        "latency_ms_p50": pct(0.50), "latency_ms_p99": pct(0.99),
        "latency_ms_mean": round(statistics.fmean(samples), 2) if samples else float("nan"),
    }  # fmt: skip
