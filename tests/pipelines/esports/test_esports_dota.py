"""The Dota 2 adapter on OpenDota's documented `/api/live` entry shape (no recorded response is in the
shared data: the entries below are written to that shape), through the common EventBuilder."""

from __future__ import annotations

from typing import Any

import pytest

from pets.pipelines.esports.dota import DotaLiveError, find_live_game, parse_live_game
from pets.pipelines.esports.signals import MarketLink, Match, SignalMaker
from pets.pipelines.esports.state import EventBuilder
from pets.pipelines.esports.winmodel import WinModel


def entry(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "activate_time": 1_765_000_000, "deactivate_time": 0, "server_steam_id": "90", "lobby_id": "1",
        "league_id": 17225, "lobby_type": 1, "game_time": 900, "delay": 120, "spectators": 5000,
        "game_mode": 2, "average_mmr": 0, "match_id": 8_100_000_001, "series_id": 900,
        "team_name_radiant": "Team Spirit", "team_name_dire": "Tundra", "team_logo_radiant": 1,
        "team_id_radiant": 7119388, "team_id_dire": 8291895,
        "sort_score": 1, "last_update_time": 1_765_000_960, "radiant_lead": 2500, "radiant_score": 12,
        "dire_score": 7, "players": [], "building_state": 4784201,
    }  # fmt: skip
    return {**fields, **changes}


def test_an_entry_becomes_a_frame_radiant_blue() -> None:
    match_id, frame = parse_live_game(entry())
    assert (
        match_id == "8100000001" and frame.frame_ts_ms == 1_765_000_960_000 and frame.game_time_ms == 900_000
    )
    snap = frame.snapshot
    assert (snap.state, snap.blue.team, snap.blue.kills, snap.blue.gold) == ("in_game", "7119388", 12, 2500)
    assert (snap.red.team, snap.red.kills, snap.red.gold) == ("8291895", 7, 0)
    assert parse_live_game(entry(radiant_lead=-800))[1].snapshot.red.gold == 800
    with pytest.raises(DotaLiveError, match="radiant_score"):
        parse_live_game({k: v for k, v in entry().items() if k != "radiant_score"})


def test_successive_entries_give_kill_events_and_the_end() -> None:
    builder = EventBuilder("8100000001", "dota2")
    events = []
    for n, (radiant, dire, gone) in enumerate([(12, 7, 0), (14, 7, 0), (14, 8, 0), (15, 8, 1_765_002_000)]):
        update = entry(
            radiant_score=radiant,
            dire_score=dire,
            last_update_time=1_765_000_960 + 20 * n,
            deactivate_time=gone,
        )
        frame = find_live_game([entry(match_id=1), update], "8100000001")
        assert frame is not None
        events += builder.on_frame(frame, (frame.frame_ts_ms + 3_000) * 1_000_000)
    kinds = [(e.event_type, e.team) for e in events]
    # joined at 12-7: that score is the baseline, not 19 kills
    assert kinds == [("game_start", None), ("kill", "7119388"), ("kill", "7119388"), ("kill", "8291895"),
                     ("kill", "7119388"), ("game_end", None)]  # fmt: skip
    assert {e.game for e in events} == {"dota2"} and {e.feed_lag_ms for e in events} == {3_000}
    assert find_live_game([entry()], "42") is None
    # no Dota 2 model: the signal maker prices none of them, but a game end still stops its market
    model = WinModel(
        features=("gold_diff",), weights=(0.0, 1.0), means={"gold_diff": 0.0}, scales={"gold_diff": 1.0},
        reference_total_gold=1.0, l2=1.0,
    )  # fmt: skip
    link = MarketLink(
        market="d1", match_id="8100000001", game_number=1, tokens={"7119388": "a", "8291895": "b"}
    )
    maker = SignalMaker(
        Match(match_id="8100000001", teams={"7119388": "Spirit", "8291895": "Tundra"}), [link], model, "v"
    )
    signals = [s for e in events for s in maker.on_event(e)]
    assert [(s.market, s.probability) for s in signals] == [("d1", None)]
