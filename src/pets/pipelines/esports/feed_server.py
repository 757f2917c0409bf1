"""A local LoL esports live-stats feed (`/livestats/v1/window/{gameId}`, `/details/{gameId}`) that plays
a recorded game in real time, for tests, the bench and demos.

The recorded frames (a livestats recording or a replayed Riot timeline) are moved to the server's clock:
frame i's time becomes start + (t_i - t_0) / speed, and it is served from that time + `lag_ms` on (the
feed's delay behind the game). Like the real feed, a `startingTime` off the 10-second grid or a window
that would end in the future is answered 400, and a window holds the frames from `startingTime` on.
Faults: `gaps` (frame indexes never served), `stall_after` (no frame from that index on: the feed
goes silent while the game goes on) and `bad_responses` (the first windows with frames lack `gameState`).

    with serve_livestats(frames, game_id="g1", match_id="m1", teams=("100", "200"), speed=60) as feed:
        JsonHttpClient(feed.url).get("/livestats/v1/window/g1", {"startingTime": ...})
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pets.pipelines.esports.lol_livestats import WINDOW_STEP_MS, LolFrame, parse_ts_ms
from pets.pipelines.venue_sim.serving import HttpServer
from pets.schemas.signals import TeamState

PATH = re.compile(r"^/livestats/v1/(window|details)/([^/]+)$")


def iso_ms(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def _team_json(team: TeamState) -> dict[str, Any]:
    return {
        "totalGold": team.gold, "inhibitors": team.inhibitors, "towers": team.towers, "barons": team.barons,
        "totalKills": team.kills, "dragons": ["dragon"] * team.dragons, "participants": [],
    }  # fmt: skip


def window_json(
    game_id: str, match_id: str, teams: tuple[str, str], frames: Sequence[tuple[int, LolFrame]]
) -> dict[str, Any]:
    """A window response in the feed's shape for (served time, frame) pairs."""
    meta = {
        "patchVersion": "local",
        "blueTeamMetadata": {"esportsTeamId": teams[0], "participantMetadata": []},
        "redTeamMetadata": {"esportsTeamId": teams[1], "participantMetadata": []},
    }
    return {
        "esportsGameId": game_id,
        "esportsMatchId": match_id,
        "gameMetadata": meta,
        "frames": [
            {"rfc460Timestamp": iso_ms(ts), "gameState": f.snapshot.state,
             "blueTeam": _team_json(f.snapshot.blue), "redTeam": _team_json(f.snapshot.red)}
            for ts, f in frames
        ],
    }  # fmt: skip


class LiveStatsServer(HttpServer):
    def __init__(
        self,
        frames: Sequence[LolFrame],
        *,
        game_id: str,
        match_id: str,
        teams: tuple[str, str],
        speed: float = 1.0,
        lag_ms: int = 0,
        gaps: Sequence[int] = (),
        stall_after: int | None = None,
        bad_responses: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.frames = list(frames)
        self.game_id, self.match_id, self.teams = game_id, match_id, teams
        self.speed, self.lag_ms = speed, lag_ms
        self.gaps, self.stall_after = frozenset(gaps), stall_after
        self.bad_responses = bad_responses  # the first windows answered without their frames' gameState
        self.start_ms = 0
        self.times: list[int] = []  # the frames' times on the server's clock
        self.requests: list[str] = []
        self.refused = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = server.answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        super().__init__(host, Handler)

    def available_ms(self, i: int) -> int:
        """When frame i is first served (server clock, ms)."""
        return self.times[i] + self.lag_ms

    def start(self, now_ms: int | None = None) -> LiveStatsServer:
        self.start_ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        first = self.frames[0].frame_ts_ms if self.frames else 0
        self.times = []
        for f in self.frames:  # distinct times, as the feed's frames have
            at = self.start_ms + int((f.frame_ts_ms - first) / self.speed)
            self.times.append(max(at, self.times[-1] + 1) if self.times else at)
        return super().start()

    def served(self, start_ms: int, now_ms: int) -> list[tuple[int, LolFrame]]:
        last = len(self.frames) if self.stall_after is None else min(self.stall_after, len(self.frames))
        return [
            (self.times[i], self.frames[i])
            for i in range(last)
            if i not in self.gaps and self.times[i] >= start_ms and self.available_ms(i) <= now_ms
        ]

    def answer(self, raw_path: str) -> tuple[int, dict[str, Any]]:
        self.requests.append(raw_path)
        url = urlsplit(raw_path)
        match = PATH.match(url.path)
        if match is None or match.group(2) != self.game_id:
            return 404, {"message": f"no game at {url.path}"}
        now = time.time_ns() // 1_000_000
        text = parse_qs(url.query).get("startingTime", [None])[0]
        try:
            start = parse_ts_ms(text) if text else now - 60_000
        except ValueError:
            self.refused += 1
            return 400, {"message": f"startingTime {text!r} is not an ISO time"}
        if start % WINDOW_STEP_MS:
            self.refused += 1
            return 400, {"message": f"startingTime {text} is not a multiple of 10 seconds"}
        if start + WINDOW_STEP_MS > now:
            self.refused += 1
            return 400, {"message": f"window from {text} ends in the future"}
        frames = self.served(start, now)
        if match.group(1) == "details":
            return 200, {"frames": [{"rfc460Timestamp": iso_ms(ts), "participants": []} for ts, _ in frames]}
        window = window_json(self.game_id, self.match_id, self.teams, frames)
        if self.bad_responses > 0 and window["frames"]:
            self.bad_responses -= 1
            for frame in window["frames"]:
                del frame["gameState"]
        return 200, window


@contextmanager
def serve_livestats(frames: Sequence[LolFrame], **options: Any) -> Iterator[LiveStatsServer]:
    server = LiveStatsServer(frames, **options).start()
    try:
        yield server
    finally:
        server.stop()
