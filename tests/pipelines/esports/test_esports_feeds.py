"""Game state from the real feeds: LoL live stats windows, Riot timelines replayed as live games, and
the events between two snapshots."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from pets.pipelines.esports.lol_livestats import LiveStatsError, WindowParser, next_starting_ms, starting_time
from pets.pipelines.esports.riot_timeline import replay
from pets.pipelines.esports.state import EventBuilder
from pets.schemas.signals import GameSnapshot, TeamState

NA1 = "lol_NA1_4729149632"


@pytest.mark.shared_data
def test_a_real_livestats_window_gives_both_teams_counters(shared_data: Path) -> None:
    raw = json.loads(
        (shared_data / "esports/lolesports_livestats/lolive_window_117030752644841578.json").read_text()
    )
    game, match, [frame] = WindowParser().parse(raw)
    assert (game, match) == ("117030752644841578", "117030752644841577")
    snap = frame.snapshot
    assert snap.state == "in_game"
    assert snap.blue == TeamState(team="100725845022060229", gold=40523, kills=6, towers=2, dragons=1)
    assert snap.red == TeamState(team="102747101565183056", gold=48664, kills=16, towers=5, dragons=3)
    assert frame.frame_ts_ms == int(
        datetime.fromisoformat("2026-08-27T08:30:09.879+00:00").timestamp() * 1000
    )
    with pytest.raises(LiveStatsError, match="gameMetadata"):
        WindowParser().parse({"frames": []})


def test_windows_start_on_the_ten_second_grid_behind_live() -> None:
    now = int(datetime.fromisoformat("2026-08-27T08:31:07.500+00:00").timestamp() * 1000)
    assert starting_time(now) == "2026-08-27T08:30:00.000Z"  # 60 s behind, rounded down to 10 s
    # closing in: just after the newest frame, but never less than 10 s behind now
    last = now - 25_000
    assert next_starting_ms(last, now) == last // 10_000 * 10_000
    assert next_starting_ms(now - 1_000, now) == (now - 10_000) // 10_000 * 10_000
    assert next_starting_ms(None, now) % 10_000 == 0


@pytest.mark.shared_data
def test_a_replayed_timeline_scores_what_the_match_record_says(shared_data: Path) -> None:
    timeline = json.loads((shared_data / f"esports/{NA1}_match_timeline.json").read_text())
    match = json.loads((shared_data / f"esports/{NA1}_match_data.json").read_text())
    builder = EventBuilder("na1", "lol")
    events = [
        e for f in replay(timeline, 1_000) for e in builder.on_frame(f, (f.frame_ts_ms + 2_500) * 1_000_000)
    ]
    for team in match["info"]["teams"]:
        side = str(team["teamId"])
        scored = {kind: sum(1 for e in events if e.event_type == kind and e.team == side) for kind in
                  ("kill", "tower", "inhibitor", "dragon", "baron")}  # fmt: skip
        objectives = team["objectives"]
        assert scored == {
            "kill": objectives["champion"]["kills"], "tower": objectives["tower"]["kills"],
            "inhibitor": objectives["inhibitor"]["kills"], "dragon": objectives["dragon"]["kills"],
            "baron": objectives["baron"]["kills"],
        }  # fmt: skip
    [end] = [e for e in events if e.event_type == "game_end"]
    winner = next(str(t["teamId"]) for t in match["info"]["teams"] if t["win"])
    assert end.team == winner == "200" and end.snapshot is not None and end.snapshot.state == "finished"
    assert {e.feed_lag_ms for e in events} == {2_500}
    times = [e.game_time_ms for e in events]
    assert times == sorted(times) and events[0].event_type == "game_start"


def snap(state: str = "in_game", blue_kills: int = 0, red_towers: int = 0) -> GameSnapshot:
    return GameSnapshot(
        state=state, blue=TeamState(team="B", kills=blue_kills), red=TeamState(team="R", towers=red_towers)
    )


class F:
    def __init__(self, ts: int, snapshot: GameSnapshot) -> None:
        self.frame_ts_ms, self.game_time_ms, self.snapshot = ts, ts - 1_000, snapshot


def test_events_between_snapshots_are_stable_across_repolls() -> None:
    b = EventBuilder("m", "lol", game_number=2)
    first = b.on_frame(F(1_000, snap()), 1_500 * 1_000_000)
    assert [e.event_type for e in first] == ["game_start"]
    two_kills = b.on_frame(F(2_000, snap(blue_kills=2, red_towers=1)), 2_100 * 1_000_000)
    assert [(e.event_type, e.team) for e in two_kills] == [("kill", "B"), ("kill", "B"), ("tower", "R")]
    assert len({e.event_id for e in two_kills}) == 3 and two_kills[0].feed_lag_ms == 100
    assert two_kills[0].game_number == 2 and two_kills[0].event_id.startswith("m:2:kill:B:1:")
    # the same frame polled again, and an older one: nothing new
    assert b.on_frame(F(2_000, snap(blue_kills=2, red_towers=1)), 3_000 * 1_000_000) == []
    assert b.on_frame(F(1_500, snap()), 3_000 * 1_000_000) == []
    paused = b.on_frame(F(3_000, snap("paused", 2, 1)), 3_000 * 1_000_000)
    resumed = b.on_frame(F(4_000, snap("in_game", 2, 1)), 4_000 * 1_000_000)
    ended = b.on_frame(F(5_000, snap("finished", 2, 1)), 5_000 * 1_000_000)
    assert [e.event_type for e in paused + resumed + ended] == ["pause", "resume", "game_end"]
