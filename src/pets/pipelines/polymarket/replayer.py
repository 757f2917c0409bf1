"""Playing recordings back through the live path: the same event splitting, keys, sinks and dead letters.

A set of recordings is one market universe and one stream of frames, whatever it is played into
(`pets replay --to kafka|embedded`, `pets run --replay`): `recordings(paths)` reads the markets
(each file's `<name>.meta.json`: token ids, Gamma id, slug, `settled_winner_asset_id`, the Gamma
state that the market resolved, applied after the last frame; without one a binary market is
inferred from the first two tokens seen under one `market`), and its `frames()` merges the files by
venue timestamp. Some recordings carry an empty `market` ("market":""): their frames get the
recording's market id (the Gamma id, else the slug), so two such files never merge into one market.
Pacing follows our receive time when the recording has it, else the venue `timestamp`, divided by
`speed` (None = as fast as possible). A line is one frame, split into events exactly as the WebSocket
client splits a message: the frame is parsed when all its events are, else dead-lettered once (with
the reason) and none of its events is produced. A file cut short (a killed recorder) is dead-lettered
as "recording truncated after line N" and the other files play on.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import msgspec

from pets.pipelines.polymarket.frames import BadFrameError, FrameSink, events_of
from pets.pipelines.polymarket.recording import RecordedFrame, TruncatedRecording, read_recording
from pets.schemas.market_data import MarketInfo
from pets.settings import DEFAULT_MAX_MESSAGE_BYTES

OnTruncated = Callable[[TruncatedRecording], object]


class ReplayStats(msgspec.Struct):
    """Frames read = parsed + dead_lettered; produced counts events; truncated names the cut files."""

    frames: int = 0
    parsed: int = 0
    produced: int = 0
    dead_lettered: int = 0
    resolved: int = 0  # market_resolved events of the recordings' Gamma state (to Kafka)
    truncated: list[str] = msgspec.field(default_factory=list)


class _Timestamp(msgspec.Struct):
    timestamp: str | int | None = None


_TIMESTAMP = msgspec.json.Decoder(_Timestamp)


def frame_time_ns(frame: RecordedFrame) -> int | None:
    """When the frame happened: our receive time, else the venue timestamp; None when neither is known."""
    if frame.recv_ns is not None:
        return frame.recv_ns
    venue_ms = _venue_ms(frame.payload)
    return None if venue_ms is None else venue_ms * 1_000_000


def _venue_ms(payload: bytes) -> int | None:
    try:
        value = _TIMESTAMP.decode(payload).timestamp
    except msgspec.DecodeError:
        return None
    return int(value) if value is not None and str(value).isdigit() else None


def paced(frames: Iterable[RecordedFrame], speed: float | None) -> Iterator[RecordedFrame]:
    """The frames, each released at its time since the first one / speed (None: at once)."""
    first_ns: int | None = None
    started = time.monotonic()
    for frame in frames:
        at = frame_time_ns(frame) if speed else None
        if speed and at is not None:
            first_ns = at if first_ns is None else first_ns
            delay = started + (at - first_ns) / 1e9 / speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield frame


class MarketSink(Protocol):
    """Where a replay's market universe goes (md.markets); a KafkaFrameSink is one."""

    def on_markets(self, markets: Sequence[MarketInfo]) -> None: ...


def replay_to_sink(
    paths: Iterable[Path],
    sink: FrameSink,
    *,
    speed: float | None = None,
    markets: MarketSink | None = None,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    on_frame: Callable[[], None] | None = None,
) -> ReplayStats:
    """Every recorded event into `sink` (md.book producer, another recording, ...), then flush.

    With `markets` (md.markets) the replay is a market universe, as `pets run --replay`'s: its markets
    go there before the first frame, and each Gamma resolution follows its market's last frame as
    the venue's `market_resolved` event on md.book (in order on the market's partition: an
    md.markets message at the end would reach the bots before the books of a fast replay). A frame over
    `max_bytes` is dead-lettered unparsed (it could not be produced to the broker). `on_frame` is
    called once per frame read (the command's progress)."""
    stats = ReplayStats()
    replay = recordings(list(paths))
    if markets is not None:
        markets.on_markets(replay.markets)

    def on_truncated(exc: TruncatedRecording) -> None:
        sink.on_dead_letter(str(exc), b"", time.time_ns())
        stats.truncated.append(str(exc))

    for frame in paced(replay.frames(on_truncated, resolved=markets is not None), speed):
        recv_ns = frame.recv_ns if frame.recv_ns is not None else time.time_ns()
        if frame.origin == "pets" and frame.payload.startswith(_RESOLVED):
            (event,) = events_of(frame.payload)
            sink.on_event(event, recv_ns, frame.origin)
            stats.resolved += 1
            continue
        stats.frames += 1
        if on_frame is not None:
            on_frame()
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


_RESOLVED = b'{"event_type":"market_resolved"'  # how `_resolved_frame` starts


def _resolved_frame(info: MarketInfo, ts_ms: int) -> bytes:
    """The venue's `market_resolved` event for a market the recording's Gamma state says resolved."""
    frame = {
        "event_type": "market_resolved",
        "id": info.market_id,
        "market": info.condition_id,
        "assets_ids": list(info.token_ids),
        "winning_asset_id": info.winning_asset_id,
        "timestamp": str(ts_ms),
    }
    return json.dumps(frame, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------- the universe

REPLAY_CATEGORY = "sports"  # the shared recordings are MLB money lines
_SCAN_FRAMES = 500
_EMPTY_MARKET = b'"market":""'


class _Head(msgspec.Struct):
    timestamp: str | int | None = None
    market: str | None = None
    asset_id: str | None = None


_HEAD = msgspec.json.Decoder(_Head)


@dataclass(frozen=True, slots=True)
class Recordings:
    """Recordings as one replay: the markets they trade, their resolutions, their merged frames."""

    paths: list[Path]
    markets: list[MarketInfo]
    resolutions: list[MarketInfo]  # applied after the last frame (Gamma state of a replay)
    market_ids: list[str | None]  # per path: the id its frames without a market are given

    def frames(
        self, on_truncated: OnTruncated | None = None, *, resolved: bool = False
    ) -> Iterator[RecordedFrame]:
        """Every file's frames merged by venue time (a file's own order kept); TruncatedRecording
        from a file cut short, unless `on_truncated` hears of it (that file then ends there).
        `resolved`: then each Gamma resolution as the venue's `market_resolved` frame, stamped with
        its market's last venue time (origin "pets"): `pets run --replay` and
        `pets replay --to kafka` settle the same markets at the same point of the same stream."""
        timed = (_timed(p, m, on_truncated) for p, m in zip(self.paths, self.market_ids, strict=True))
        merged = heapq.merge(*timed, key=lambda item: item[0])
        if not resolved:
            return (frame for _, _, frame in merged)
        return self._resolved(merged)

    def _resolved(self, merged: Iterator[tuple[int, str | None, RecordedFrame]]) -> Iterator[RecordedFrame]:
        last_ms: dict[str | None, int] = {}
        recv_ns: int | None = None
        for ts, market, frame in merged:
            last_ms[market] = ts
            recv_ns = frame.recv_ns if frame.recv_ns is not None else recv_ns
            yield frame
        for info in self.resolutions:  # paced as the last frame: no pause before them
            ts_ms = last_ms.get(info.condition_id, 0)
            yield RecordedFrame(_resolved_frame(info, ts_ms), recv_ns, "pets")


def recordings(paths: Sequence[Path]) -> Recordings:
    """The recordings' market universe (from the meta files, else from their first frames)."""
    markets: list[MarketInfo] = []
    resolutions: list[MarketInfo] = []
    market_ids: list[str | None] = []
    for path in paths:
        info, winner = _market_of(path)
        market_ids.append(None if info is None else info.condition_id)
        if info is None:
            continue
        markets.append(info)
        if winner is not None:
            resolutions.append(
                msgspec.structs.replace(
                    info,
                    closed=True,
                    accepting_orders=False,
                    active=False,
                    winning_asset_id=winner,
                    outcome_prices=tuple(Decimal(1) if t == winner else Decimal(0) for t in info.token_ids),
                )
            )
    return Recordings(list(paths), markets, resolutions, market_ids)


def _timed(
    path: Path, market_id: str | None, on_truncated: OnTruncated | None
) -> Iterator[tuple[int, str | None, RecordedFrame]]:
    """(venue ms, the recording's market id, frame) of one recording; an empty `market` becomes the
    recording's market id."""
    last = 0
    named = b'"market":"' + market_id.encode() + b'"' if market_id else None
    try:
        for frame in read_recording(path):
            payload = frame.payload
            try:
                ts = _HEAD.decode(payload).timestamp
                last = int(ts) if ts is not None else last
            except (msgspec.DecodeError, ValueError):
                pass  # a malformed line keeps its place; the parser dead-letters it
            if named is not None and _EMPTY_MARKET in payload:
                frame = RecordedFrame(payload.replace(_EMPTY_MARKET, named, 1), frame.recv_ns, frame.origin)
            yield last, market_id, frame
    except TruncatedRecording as exc:
        if on_truncated is None:
            raise
        on_truncated(exc)


def _meta_path(path: Path) -> Path:
    name = path.name
    for suffix in (".jsonl.gz", ".jsonl", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + ".meta.json")


def _market_of(path: Path) -> tuple[MarketInfo | None, str | None]:
    """The recording's market (from its meta file, else from its first frames) and the settled winner."""
    meta_path = _meta_path(path)
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    market_id = meta.get("gamma_market_id") or meta.get("slug")
    tokens = tuple(meta.get("asset_ids") or ())
    if not market_id or len(tokens) != 2:
        market_id, tokens = _scan(path)
    if market_id is None:
        return None, None
    outcome_names = meta.get("outcome_names") or {}
    outcomes = tuple(outcome_names.get(t, f"outcome {i}") for i, t in enumerate(tokens))
    slug = meta.get("slug") or path.stem
    info = MarketInfo(
        condition_id=market_id,
        market_id=market_id,
        question=slug,
        slug=slug,
        category=REPLAY_CATEGORY,
        token_ids=tokens,
        outcomes=outcomes,
        neg_risk=False,
        tick_size=Decimal("0.01"),
        min_order_size=Decimal(5),
        active=True,
        closed=False,
        accepting_orders=True,
    )
    return info, meta.get("settled_winner_asset_id")


def _scan(path: Path) -> tuple[str | None, tuple[str, ...]]:
    market: str | None = None
    tokens: list[str] = []
    try:
        for n, frame in enumerate(read_recording(path)):
            if n >= _SCAN_FRAMES or len(tokens) == 2:
                break
            try:
                head = _HEAD.decode(frame.payload)
            except msgspec.DecodeError:
                continue
            if head.asset_id and (market is None or head.market == market):
                market = head.market
                if head.asset_id not in tokens:
                    tokens.append(head.asset_id)
    except TruncatedRecording:
        pass  # the frames read so far name what they can; playing the file reports the cut
    if len(tokens) != 2 or market is None:
        return None, ()
    return market or path.name.split(".")[0], tuple(tokens)
