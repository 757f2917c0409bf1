"""Playing recordings back through the live path: the same event splitting, keys, sinks and dead letters.

Files play one after another in the order given, each in file order. Pacing follows our receive
time when the recording has it, else the venue `timestamp`, divided by `speed` (None = as fast as
possible). A line is one frame, split into events exactly as the WebSocket client splits a
message: the frame is parsed when all its events are, else dead-lettered once (with the reason)
and none of its events is produced. A file cut short (a killed recorder) is dead-lettered as
"recording truncated after line N" and the replay goes on with the next file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import msgspec

from pets.pipelines.polymarket.frames import BadFrameError, FrameSink, events_of
from pets.pipelines.polymarket.recording import RecordedFrame, TruncatedRecording, read_recording
from pets.settings import DEFAULT_MAX_MESSAGE_BYTES

OnTruncated = Callable[[TruncatedRecording], object]


class ReplayStats(msgspec.Struct):
    """Frames read = parsed + dead_lettered; produced counts events; truncated names the cut files."""

    frames: int = 0
    parsed: int = 0
    produced: int = 0
    dead_lettered: int = 0
    truncated: list[str] = msgspec.field(default_factory=list)


class _Timestamp(msgspec.Struct):
    timestamp: str | int | None = None


_TIMESTAMP = msgspec.json.Decoder(_Timestamp)


def frame_time_ns(frame: RecordedFrame) -> int | None:
    """When the frame happened: our receive time, else the venue timestamp; None when neither is known."""
    if frame.recv_ns is not None:
        return frame.recv_ns
    try:
        value = _TIMESTAMP.decode(frame.payload).timestamp
    except msgspec.DecodeError:
        return None
    return int(value) * 1_000_000 if value is not None and str(value).isdigit() else None


def recorded_frames(
    paths: Iterable[Path], *, speed: float | None = None, on_truncated: OnTruncated | None = None
) -> Iterator[RecordedFrame]:
    """The frames of the files in order, each released at its recorded time / speed.

    A truncated file ends with its last complete line: `on_truncated` hears of it (raised without it).
    """
    for path in paths:
        first_ns: int | None = None
        started = time.monotonic()
        try:
            for frame in read_recording(path):
                at = frame_time_ns(frame) if speed else None
                if speed and at is not None:
                    first_ns = at if first_ns is None else first_ns
                    delay = started + (at - first_ns) / 1e9 / speed - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                yield frame
        except TruncatedRecording as exc:
            if on_truncated is None:
                raise
            on_truncated(exc)


def replay_to_sink(
    paths: Iterable[Path],
    sink: FrameSink,
    *,
    speed: float | None = None,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> ReplayStats:
    """Every recorded event into `sink` (md.book producer, another recording, ...), then flush. A
    frame over `max_bytes` is dead-lettered unparsed (it could not be produced to the broker)."""
    stats = ReplayStats()

    def on_truncated(exc: TruncatedRecording) -> None:
        sink.on_dead_letter(str(exc), b"", time.time_ns())
        stats.truncated.append(str(exc))

    for frame in recorded_frames(paths, speed=speed, on_truncated=on_truncated):
        stats.frames += 1
        recv_ns = frame.recv_ns if frame.recv_ns is not None else time.time_ns()
        if len(frame.payload) > max_bytes:
            reason = f"frame of {len(frame.payload)} bytes exceeds the input limit of {max_bytes} bytes"
            sink.on_dead_letter(reason, frame.payload, recv_ns)
            stats.dead_lettered += 1
            continue
        try:
            events = events_of(frame.payload)
        except BadFrameError as exc:
            sink.on_dead_letter(str(exc), frame.payload, recv_ns)
            stats.dead_lettered += 1
            continue
        stats.parsed += 1
        for event in events:
            sink.on_event(event, recv_ns, frame.origin)
        stats.produced += len(events)
    sink.flush()
    return stats


def replay_payloads(
    paths: Iterable[Path], *, speed: float | None = None, on_truncated: OnTruncated | None = None
) -> Iterator[bytes]:
    """The exact frame bytes of the recordings (for the embedded market-state pipeline)."""
    for frame in recorded_frames(paths, speed=speed, on_truncated=on_truncated):
        yield frame.payload
