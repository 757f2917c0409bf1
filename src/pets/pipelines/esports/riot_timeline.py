"""Riot match-v5 timelines (`/lol/match/v5/matches/{id}/timeline`) replayed as a live game.

Every CHAMPION_KILL, ELITE_MONSTER_KILL (dragon, baron), BUILDING_KILL (tower, inhibitor) and GAME_END
becomes a frame at its own game time (a millisecond after the frame before when two share one: a feed's
frames have distinct times), and every per-minute frame updates the teams' gold (sum of the
participants' totalGold: participants 1-5 are team 100, blue; 6-10 team 200, red). The frames' feed
time is `start_ms` + the game time, so the replay can be served in real time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from pets.pipelines.esports.lol_livestats import LolFrame
from pets.schemas.signals import GameSnapshot, TeamState

BLUE, RED = 100, 200
MONSTERS = {"DRAGON": "dragons", "BARON_NASHOR": "barons"}
BUILDINGS = {"TOWER_BUILDING": "towers", "INHIBITOR_BUILDING": "inhibitors"}


class TimelineError(ValueError):
    """Not a match-v5 timeline."""


def _side_of_participant(pid: int) -> int | None:
    return BLUE if 1 <= pid <= 5 else RED if 6 <= pid <= 10 else None


def replay(
    timeline: dict[str, Any], start_ms: int, teams: tuple[str, str] = ("100", "200")
) -> Iterator[LolFrame]:
    """The game as frames in time order (the team names of blue and red given by `teams`)."""
    try:
        frames = timeline["info"]["frames"]
    except (KeyError, TypeError):
        raise TimelineError("no info.frames: not a match-v5 timeline") from None
    names = {BLUE: teams[0], RED: teams[1]}
    state: dict[int, TeamState] = {side: TeamState(team=names[side]) for side in (BLUE, RED)}
    winner: str | None = None
    finished = False

    last_ms = -1

    def frame(at_ms: int) -> LolFrame:
        nonlocal last_ms
        at_ms = last_ms = max(at_ms, last_ms + 1)  # every frame of a feed has its own time
        snap = GameSnapshot(state="finished" if finished else "in_game", blue=state[BLUE], red=state[RED],
                            winner=winner)  # fmt: skip
        return LolFrame(start_ms + at_ms, at_ms, snap)

    def bump(side: int | None, field: str) -> None:
        if side in state:
            team = state[side]
            state[side] = msgspec.structs.replace(team, **{field: getattr(team, field) + 1})

    for raw in frames:
        for event in raw.get("events") or ():
            kind, at = event.get("type"), int(event.get("timestamp", raw["timestamp"]))
            if kind == "CHAMPION_KILL":
                side = _side_of_participant(int(event.get("killerId", 0)))
                if side is None:  # an execution: the victim's opponents score it
                    victim = _side_of_participant(int(event.get("victimId", 0)))
                    side = None if victim is None else RED if victim == BLUE else BLUE
                bump(side, "kills")
            elif kind == "ELITE_MONSTER_KILL" and event.get("monsterType") in MONSTERS:
                bump(int(event.get("killerTeamId", 0)), MONSTERS[event["monsterType"]])
            elif kind == "BUILDING_KILL" and event.get("buildingType") in BUILDINGS:
                owner = int(event.get("teamId", 0))
                bump(
                    RED if owner == BLUE else BLUE if owner == RED else None, BUILDINGS[event["buildingType"]]
                )
            elif kind == "GAME_END":
                finished = True
                won = event.get("winningTeam")
                winner = names.get(int(won)) if won is not None else None
            else:
                continue
            yield frame(at)
        # a frame's events happened before its timestamp; its gold is the gold at the timestamp
        gold = {BLUE: 0, RED: 0}
        for pid, p in (raw.get("participantFrames") or {}).items():
            side = _side_of_participant(int(pid))
            if side is not None:
                gold[side] += int(p.get("totalGold", 0))
        for side in (BLUE, RED):
            state[side] = msgspec.structs.replace(state[side], gold=gold[side])
        yield frame(int(raw["timestamp"]))
