"""League of Legends esports live stats (feed.lolesports.com/livestats/v1): parsing and polling windows.

`GET /livestats/v1/window/{gameId}?startingTime=ISO` returns the game's metadata and about ten frames
(`rfc460Timestamp`, `gameState`, per team totalGold, totalKills, towers, inhibitors, barons, dragons[]);
`/details/{gameId}` per participant stats. `startingTime` must be a multiple of 10 s and the window may
not end in the future (the feed answers 400): a poller starts behind live and closes in
(`next_starting_time`). The feed has no game clock: the game time is the frame's time since the first
frame seen in game (pauses included, which the feed does not separate).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pets.pipelines.esports.state import EventBuilder
from pets.pipelines.polymarket.http import JsonHttpClient, VenueHttpError
from pets.schemas.signals import EsportsEvent, GameSnapshot, TeamState

WINDOW_STEP_MS = 10_000
DEFAULT_BEHIND_MS = 60_000  # clients start about a minute behind live (docs/esports.md)


class LiveStatsError(ValueError):
    """A response without the fields a window carries (names what is missing)."""


class LolFrame(NamedTuple):
    frame_ts_ms: int
    game_time_ms: int
    snapshot: GameSnapshot


def parse_ts_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def iso_start(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def starting_time(now_ms: int, behind_ms: int = DEFAULT_BEHIND_MS) -> str:
    """The `startingTime` of a window `behind_ms` before `now_ms`, on the feed's 10-second grid."""
    return iso_start((now_ms - behind_ms) // WINDOW_STEP_MS * WINDOW_STEP_MS)


def next_starting_ms(last_frame_ms: int | None, now_ms: int, behind_ms: int = DEFAULT_BEHIND_MS) -> int:
    """Where the next window starts: just after the newest frame seen (closing in on live), never less
    than `behind_ms / 6` behind now (the window must not end in the future), on the 10-second grid."""
    floor_ms = now_ms - behind_ms
    start = floor_ms if last_frame_ms is None else max(floor_ms, last_frame_ms)
    start = min(start, now_ms - behind_ms // 6)
    return start // WINDOW_STEP_MS * WINDOW_STEP_MS


def _team(raw: dict[str, Any], team_id: str) -> TeamState:
    return TeamState(
        team=team_id,
        gold=int(raw.get("totalGold", 0)),
        kills=int(raw.get("totalKills", 0)),
        towers=int(raw.get("towers", 0)),
        inhibitors=int(raw.get("inhibitors", 0)),
        barons=int(raw.get("barons", 0)),
        dragons=len(raw.get("dragons") or ()),
    )


class WindowParser:
    """Frames of one game's window responses; keeps the first in-game frame time (the game clock's 0)."""

    def __init__(self) -> None:
        self.start_ms: int | None = None

    def parse(self, window: dict[str, Any]) -> tuple[str, str, list[LolFrame]]:
        """(game id, match id, frames) of one window response."""
        try:
            meta = window["gameMetadata"]
            blue_id = str(meta["blueTeamMetadata"]["esportsTeamId"])
            red_id = str(meta["redTeamMetadata"]["esportsTeamId"])
            game_id, match_id = str(window["esportsGameId"]), str(window["esportsMatchId"])
            raw_frames = window["frames"]
        except (KeyError, TypeError) as exc:
            raise LiveStatsError(f"window without {exc}") from None
        frames = []
        for raw in raw_frames:
            try:
                ts = parse_ts_ms(raw["rfc460Timestamp"])
                state = str(raw["gameState"])
                blue, red = _team(raw["blueTeam"], blue_id), _team(raw["redTeam"], red_id)
            except (KeyError, TypeError, ValueError) as exc:
                raise LiveStatsError(f"frame without a valid {exc}") from None
            if self.start_ms is None and state == "in_game":
                self.start_ms = ts
            game_ms = ts - self.start_ms if self.start_ms is not None else 0
            frames.append(LolFrame(ts, game_ms, GameSnapshot(state=state, blue=blue, red=red)))
        return game_id, match_id, frames


class LiveStatsPoller:
    """Polls one game's windows (closing in on live), turns the frames into events and reports a feed
    that went silent (`stall_after_ms` without a newer frame while the game is on). A refused or failed
    request counts in `errors` and yields only the stall check. `lags_ms` keeps every newer frame's lag
    (received - frame time), the feed lag the events carry."""

    def __init__(
        self,
        client: JsonHttpClient,
        game_id: str,
        *,
        game_number: int = 1,
        behind_ms: int = DEFAULT_BEHIND_MS,
        stall_after_ms: int = 30_000,
        schedule: dict[str, object] | None = None,
    ) -> None:
        self.schedule = schedule  # {"teams": {feed team id: name}, "best_of": n} from the schedule
        self.client = client
        self.game_id = game_id
        self.game_number = game_number
        self.behind_ms = behind_ms
        self.stall_after_ms = stall_after_ms
        self.parser = WindowParser()
        self.builder: EventBuilder | None = None
        self.errors: list[str] = []
        self.bad: list[tuple[str, bytes]] = []  # (reason, response) of unreadable windows, until taken
        self.lags_ms: list[int] = []
        self.frames = 0

    def poll(self) -> list[EsportsEvent]:
        now_ms = time.time_ns() // 1_000_000
        last = self.builder.last_frame_ms if self.builder is not None else None
        start = next_starting_ms(last, now_ms, self.behind_ms)
        raw: Any = None
        try:
            raw = self.client.get(f"/livestats/v1/window/{self.game_id}", {"startingTime": iso_start(start)})
            received_ns = time.time_ns()
            _, match_id, frames = self.parser.parse(raw)
        except (VenueHttpError, LiveStatsError) as exc:
            self.errors.append(str(exc))
            if isinstance(exc, LiveStatsError):  # a response we cannot read: kept for the dead letters
                self.bad.append((str(exc), json.dumps(raw).encode()))
            return self.builder.check_stall(time.time_ns(), self.stall_after_ms) if self.builder else []
        if self.builder is None:
            self.builder = EventBuilder(match_id, "lol", self.game_number, self.schedule)
        builder = self.builder
        events = []
        for frame in frames:
            newer = builder.last_frame_ms is None or frame.frame_ts_ms > builder.last_frame_ms
            events += builder.on_frame(frame, received_ns)
            if newer:
                self.frames += 1
                self.lags_ms.append(received_ns // 1_000_000 - frame.frame_ts_ms)
        return events + builder.check_stall(received_ns, self.stall_after_ms)
