"""Dota 2 live games from OpenDota's `GET /api/live` (Steam's top live games), as frames of the common
adapter interface (`state.Frame`), so the same EventBuilder turns them into esports.event.

One entry of the list, in OpenDota's documented shape: `match_id`, `last_update_time` (unix s),
`game_time` (s), `deactivate_time` (0 while live), `delay` (the spectator delay, s), `team_id_radiant`,
`team_id_dire`, `team_name_radiant`, `team_name_dire`, `radiant_score` and `dire_score` (kills),
`radiant_lead` (net-worth lead, negative when dire leads), `building_state`, `players`. Radiant is the
snapshot's blue side, dire its red.

What the entry does not give is left out: team totals of gold (only the lead: the leading side's `gold`
holds the lead, the other 0), towers (`building_state` is a bit mask not decoded here), Roshan, the
winner. OpenDota refreshes it about every 20 s. There is no Dota 2 win model: the esports flow reports
these events and prices none of them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pets.schemas.signals import GameSnapshot, TeamState


class DotaLiveError(ValueError):
    """An entry without the fields of OpenDota's live game (names what is missing)."""


class DotaFrame(NamedTuple):
    frame_ts_ms: int
    game_time_ms: int
    snapshot: GameSnapshot


def parse_live_game(entry: dict[str, Any]) -> tuple[str, DotaFrame]:
    """(match id, frame) of one `/api/live` entry."""
    try:
        match_id = str(entry["match_id"])
        lead = int(entry.get("radiant_lead") or 0)
        radiant = TeamState(
            team=str(entry.get("team_id_radiant") or "radiant"),
            gold=max(lead, 0),
            kills=int(entry["radiant_score"]),
        )
        dire = TeamState(
            team=str(entry.get("team_id_dire") or "dire"), gold=max(-lead, 0), kills=int(entry["dire_score"])
        )
        state = "finished" if int(entry.get("deactivate_time") or 0) else "in_game"
        frame = DotaFrame(int(entry["last_update_time"]) * 1000, int(entry["game_time"]) * 1000,
                          GameSnapshot(state=state, blue=radiant, red=dire))  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise DotaLiveError(f"live game entry without a valid {exc}") from None
    return match_id, frame


def find_live_game(entries: list[dict[str, Any]], match_id: str) -> DotaFrame | None:
    """The frame of `match_id` in a `/api/live` response, None when it is not (or no longer) listed."""
    for entry in entries:
        if str(entry.get("match_id")) == match_id:
            return parse_live_game(entry)[1]
    return None
