"""A recorded game served in real time by the local live-stats feed (lag, gaps, a stalled feed), polled
over HTTP by the real client, turned into events, signals and Bot 2's intents."""

from __future__ import annotations

import json
import time
from collections import Counter
from decimal import Decimal as D
from pathlib import Path

import pytest

from pets.bots.esports_live import EsportsLiveEvents
from pets.pipelines.esports.feed_server import iso_ms, serve_livestats
from pets.pipelines.esports.lol_livestats import LiveStatsPoller, LolFrame
from pets.pipelines.esports.riot_timeline import replay
from pets.pipelines.esports.signals import Match, SignalMaker, link_markets, normalize_team
from pets.pipelines.esports.state import EventBuilder
from pets.pipelines.esports.winmodel import WinModel
from pets.pipelines.polymarket.http import JsonHttpClient, VenueHttpError
from pets.schemas.config import load_config
from pets.schemas.market_data import MarketInfo
from pets.schemas.signals import EsportsEvent, GameSnapshot, TeamState
from pets.settings import project_root
from venue_factories import market, tob

pytestmark = pytest.mark.shared_data
NA1 = "esports/lol_NA1_4729149632_match_timeline.json"
TEAMS = ("100", "200")
SPEED = 400.0  # the 19.6-minute game in about 3 s


def frames(shared_data: Path) -> list[LolFrame]:
    return list(replay(json.loads((shared_data / NA1).read_text()), 1_700_000_000_000))


def play(
    shared_data: Path, stall_ms: int = 400, until_s: float = 8.0, **options: object
) -> tuple[list[EsportsEvent], LiveStatsPoller, object]:
    recorded = frames(shared_data)
    with serve_livestats(recorded, game_id="g1", match_id="m1", teams=TEAMS, speed=SPEED, **options) as feed:
        poller = LiveStatsPoller(JsonHttpClient(feed.url, retries=0), "g1", stall_after_ms=stall_ms)
        events: list[EsportsEvent] = []
        deadline = time.monotonic() + until_s
        while time.monotonic() < deadline:
            events += poller.poll()
            if events and events[-1].event_type in ("game_end", "stall"):
                break
            time.sleep(0.02)
        return events, poller, feed


def counts(events: list[EsportsEvent]) -> Counter[tuple[str, str | None]]:
    """Events by type and team (the live feed names no winner: a game end's team is left out)."""
    return Counter((e.event_type, None if e.event_type == "game_end" else e.team) for e in events)


def test_the_served_game_gives_the_replays_events_with_the_measured_lag(shared_data: Path) -> None:
    direct = EventBuilder("m1", "lol")
    expected = [e for f in frames(shared_data) for e in direct.on_frame(f, 0)]
    events, poller, feed = play(shared_data, lag_ms=250)
    assert counts(events) == counts(expected) and events[-1].event_type == "game_end"
    assert feed.refused == 0 and poller.errors == []  # the poller keeps to the grid and the past
    lags = sorted(e.feed_lag_ms or 0 for e in events)
    assert lags[0] >= 250  # never sooner than the feed's delay
    assert lags[len(lags) // 2] < 250 + 500


def test_gaps_in_the_feed_lose_no_objective(shared_data: Path) -> None:
    recorded = frames(shared_data)
    direct = EventBuilder("m1", "lol")
    expected = [e for f in recorded for e in direct.on_frame(f, 0)]
    gaps = [i for i in range(1, len(recorded) - 1) if i % 3 == 0]
    events, _, _ = play(shared_data, gaps=gaps)
    # frames skipped by the feed: their counters arrive with the next frame served
    assert counts(events) == counts(expected)


def test_a_stalled_feed_is_reported_and_stops_bot_2_on_the_match(shared_data: Path) -> None:
    events, poller, _ = play(shared_data, stall_ms=300, stall_after=60)
    assert events[-1].event_type == "stall" and poller.builder is not None and poller.builder.stalled
    assert events[-1].payload["silent_ms"] >= 300
    question = "LoL: Blue vs Red - Game 1 Winner"
    info = market(
        "cm1", ("tok_blue", "tok_red"), category="esports", question=question, outcomes=("Blue", "Red")
    )
    match = Match(match_id="m1", teams={"100": "Blue Esports", "200": "Red Gaming"}, best_of=1)
    [link] = link_markets(match, [info])
    assert (link.game_number, link.tokens) == (1, {"100": "tok_blue", "200": "tok_red"})
    maker = SignalMaker(match, [link], flat_model(), "esports_win@test")
    config = load_config(project_root() / "config")
    shipped = next(b for b in config.bots if b.id == "bot_02")
    bot = EsportsLiveEvents(shipped, config.system.venue)
    bot.on_market(info)
    ts = events[0].received_ns // 1_000_000
    bot.on_top_of_book(tob("tok_blue", "cm1", "0.30", "0.32", ts_ms=ts, bid_size="500", ask_size="500"))
    bot.on_top_of_book(tob("tok_red", "cm1", "0.68", "0.70", ts_ms=ts, bid_size="500", ask_size="500"))
    signals = [s for e in events for s in maker.on_event(e)]
    assert signals[-1].probability is None and signals[-1].rationale == "feed stalled"
    for s in signals[:-1]:
        bot.on_signal(s)
    bot.on_signal(signals[-1])
    assert bot.halted == {"cm1": "feed stalled"}
    # while stalled, a book showing an edge brings no entry
    assert (
        bot.on_top_of_book(
            tob("tok_blue", "cm1", "0.20", "0.21", ts_ms=ts + 1, bid_size="500", ask_size="500")
        )
        == []
    )


def flat_model() -> WinModel:
    return WinModel(
        features=("gold_diff", "dragon_diff"), weights=(0.0, 1.4, 0.3),
        means={"gold_diff": 0.0, "dragon_diff": 0.0}, scales={"gold_diff": 2500.0, "dragon_diff": 1.0},
        reference_total_gold=33_000.0, l2=1.0,
    )  # fmt: skip


def test_the_feed_refuses_windows_off_the_grid_or_in_the_future(shared_data: Path) -> None:
    with serve_livestats(frames(shared_data)[:5], game_id="g1", match_id="m1", teams=TEAMS) as feed:
        client = JsonHttpClient(feed.url, retries=0)
        now = time.time_ns() // 1_000_000
        with pytest.raises(VenueHttpError, match="multiple of 10 seconds"):
            client.get("/livestats/v1/window/g1", {"startingTime": iso_ms(now // 10_000 * 10_000 - 25_000)})
        with pytest.raises(VenueHttpError, match="ends in the future"):
            client.get("/livestats/v1/window/g1", {"startingTime": iso_ms(now // 10_000 * 10_000)})
        with pytest.raises(VenueHttpError, match="HTTP 404"):
            client.get("/livestats/v1/window/other", {})


def test_markets_map_by_normalised_team_names_and_unmapped_matches_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert normalize_team("T1 Esports") == normalize_team("t1") and normalize_team("Gen.G") == "geng"
    match = Match(match_id="m9", teams={"a": "T1", "b": "Gen.G Esports"}, best_of=5)
    markets: list[MarketInfo] = [
        market("s", ("s1", "s2"), question="LoL: T1 vs Gen.G (BO5) - LCK Finals", outcomes=("Gen.G", "T1")),
        market("g2", ("g1", "g2"), question="LoL: T1 vs Gen.G - Game 2 Winner", outcomes=("T1", "Gen.G")),
        market(
            "y", ("y1", "y2"), question="Will T1 beat Gen.G?", outcomes=("Yes", "No")
        ),  # not a team market
        market("o", ("o1", "o2"), question="LoL: T1 vs HLE - Game 1 Winner", outcomes=("T1", "HLE")),
    ]
    links = {link.market: link for link in link_markets(match, markets)}
    assert set(links) == {"s", "g2"}
    assert (links["s"].game_number, links["s"].tokens) == (None, {"a": "s2", "b": "s1"})
    assert (links["g2"].game_number, links["g2"].tokens) == (2, {"a": "g1", "b": "g2"})
    assert link_markets(Match(match_id="m0", teams={"a": "Fnatic", "b": "G2"}), markets) == []
    assert "esports match m0 (Fnatic vs G2) has no Polymarket market: unmapped" in caplog.text


def test_series_signals_follow_the_score() -> None:
    match = Match(match_id="m", teams={"100": "A", "200": "B"}, best_of=3)
    links = [
        *link_markets(match, [market("s", ("sa", "sb"), question="A vs B", outcomes=("A", "B"))]),
        *link_markets(match, [market("g1", ("ga", "gb"), question="A vs B game 1", outcomes=("A", "B"))]),
    ]
    maker = SignalMaker(match, links, flat_model(), "v")
    even = GameSnapshot(
        state="in_game", blue=TeamState(team="100", gold=20_000), red=TeamState(team="200", gold=20_000)
    )
    event = EsportsEvent(
        event_id="e1", match_id="m", game="lol", event_type="kill", game_time_ms=600_000, team="100",
        payload={}, received_ns=1, snapshot=even, feed_lag_ms=1_000,
    )  # fmt: skip
    by_market = {s.market: s for s in maker.on_event(event)}
    # the intercept-free model gives 0.5 on an even game; so does the series from 0-0
    assert by_market["g1"].probability == D("0.5") and by_market["s"].probability == D("0.5")
    assert by_market["g1"].asset_id == "ga" and by_market["g1"].feed_lag_ms == 1_000
    end = EsportsEvent(
        event_id="e2", match_id="m", game="lol", event_type="game_end", game_time_ms=1, team="100",
        payload={}, received_ns=2, snapshot=even,
    )  # fmt: skip
    after = {s.market: s for s in maker.on_event(end)}
    assert after["g1"].probability is None  # game 1 is over: no more trading on its market
    # 1-0 up in a best of 3 with even games after: 1 - 0.5 x 0.5 = 0.75
    assert after["s"].probability == D("0.75") and after["s"].asset_id == "sa"
