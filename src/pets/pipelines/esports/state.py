"""Game state from the feeds and the events between two states, the same for every game.

`EventBuilder` turns a game's successive snapshots into `EsportsEvent`s (the first frame is the baseline,
announced as `game_start`): a counter that rose is an event
of the team that scored (one per unit: two towers in one frame are two tower events), a change of the
game's state is a pause, resume, start or end. Event ids are the match, game, type, team, count and
frame time, so a re-polled frame yields the same ids (dedup downstream). The feed lag of every event is
the time the frame was received minus the frame's own time.

Adapters (`lol_livestats`, `riot_timeline`, `dota`) parse their feed's messages into snapshots.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from pets.schemas.signals import EsportsEvent, GameSnapshot

COUNTERS = (("kills", "kill"), ("towers", "tower"), ("inhibitors", "inhibitor"), ("dragons", "dragon"),
            ("barons", "baron"))  # fmt: skip


class Frame(Protocol):
    """What an adapter yields: the feed's time of the frame, the game clock and the state."""

    @property
    def frame_ts_ms(self) -> int: ...

    @property
    def game_time_ms(self) -> int: ...

    @property
    def snapshot(self) -> GameSnapshot: ...


def team_side(snapshot: GameSnapshot, team: str) -> str | None:
    if snapshot.blue.team == team:
        return "blue"
    if snapshot.red.team == team:
        return "red"
    return None


class EventBuilder:
    """One game's events from its frames (in feed order; frames not newer than the last are ignored)."""

    def __init__(
        self, match_id: str, game: str, game_number: int = 1, schedule: dict[str, object] | None = None
    ) -> None:
        self.match_id = match_id
        self.schedule = schedule or {}  # the match's teams and best_of, on every event (payload)
        self.game = game
        self.game_number = game_number
        self.last: GameSnapshot | None = None
        self.last_frame_ms: int | None = None
        self.last_new_ns: int | None = None  # when a newer frame last arrived
        self.stalled = False

    def _event(
        self, kind: str, team: str | None, frame: Frame, received_ns: int, count: int = 0, **payload: object
    ) -> EsportsEvent:
        ts = frame.frame_ts_ms
        return EsportsEvent(
            event_id=f"{self.match_id}:{self.game_number}:{kind}:{team or '-'}:{count}:{ts}",
            match_id=self.match_id,
            game=self.game,
            event_type=kind,
            game_time_ms=frame.game_time_ms,
            team=team,
            payload={**self.schedule, **payload},
            received_ns=received_ns,
            game_number=self.game_number,
            snapshot=frame.snapshot,
            feed_lag_ms=received_ns // 1_000_000 - ts,
            frame_ts_ms=ts,
        )

    def on_frame(self, frame: Frame, received_ns: int) -> list[EsportsEvent]:
        if self.last_frame_ms is not None and frame.frame_ts_ms <= self.last_frame_ms:
            return []  # a window overlaps the previous one: frames seen already
        out: list[EsportsEvent] = []
        self.last_new_ns = received_ns
        if self.stalled:
            self.stalled = False
            out.append(self._event("recovered", None, frame, received_ns))
        self.last_frame_ms = frame.frame_ts_ms
        cur, prev = frame.snapshot, self.last
        self.last = cur
        if prev is None:  # the first frame is the baseline: a feed joined mid-game replays no history
            if cur.state != "finished":
                out.append(self._event("game_start", None, frame, received_ns))
            prev = cur
        for before, after in ((prev.blue, cur.blue), (prev.red, cur.red)):
            for field, kind in COUNTERS:
                old, new = getattr(before, field), getattr(after, field)
                for n in range(old + 1, new + 1):
                    out.append(self._event(kind, after.team, frame, received_ns, n))
        if cur.state != prev.state:
            if cur.state == "paused":
                out.append(self._event("pause", None, frame, received_ns))
            elif cur.state == "finished":
                out.append(self._event("game_end", cur.winner, frame, received_ns))
            elif prev.state == "paused":
                out.append(self._event("resume", None, frame, received_ns))
        return out

    def check_stall(self, now_ns: int, stall_after_ms: int) -> list[EsportsEvent]:
        """A `stall` event once no newer frame has arrived for `stall_after_ms` while the game is on
        (the next newer frame says `recovered`)."""
        last, at = self.last, self.last_new_ns
        if self.stalled or last is None or at is None or last.state == "finished":
            return []
        if now_ns - at < stall_after_ms * 1_000_000:
            return []
        self.stalled = True
        ts = self.last_frame_ms or 0
        return [
            EsportsEvent(
                event_id=f"{self.match_id}:{self.game_number}:stall:-:0:{ts}:{now_ns}",
                match_id=self.match_id, game=self.game, event_type="stall", game_time_ms=0, team=None,
                payload={**self.schedule, "silent_ms": (now_ns - at) // 1_000_000}, received_ns=now_ns,
                game_number=self.game_number, snapshot=last, feed_lag_ms=now_ns // 1_000_000 - ts,
                frame_ts_ms=ts,
            )
        ]  # fmt: skip

    def on_frames(self, frames: Iterable[Frame], received_ns: int) -> list[EsportsEvent]:
        return [event for frame in frames for event in self.on_frame(frame, received_ns)]
