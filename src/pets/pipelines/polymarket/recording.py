"""The recording file format: JSON lines of market-channel events, gzip when the name ends in .gz.

It is the format of data/polymarket/l2/*.jsonl.gz (one venue event object per line, in arrival
order) plus what a recording needs to replay the live path exactly, appended as the last members
of each object so every frame field stays byte-for-byte the venue's:

    {...venue event...,"_recv_ns":1750803262061123456}                  a WebSocket frame
    {"event_type":"book",...,"_recv_ns":1750803263000000000,"_origin":"rest"}   a REST resync snapshot

Continuity events (ours) are recorded too, so a replay shows the same gaps. `strip_annotation`
gives back the exact event bytes; lines without the annotation (the shared recordings) are
returned as they are, with no receive time. A killed recorder leaves a gzip file without its end:
reading stops at the last complete line with `TruncatedRecording`.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

import msgspec

from pets.pipelines.polymarket.frames import ORIGINS, Origin

_ANNOTATION = re.compile(rb'(,?)"_recv_ns":(\d+)(?:,"_origin":"([a-z]+)")?\}\s*$')


class TruncatedRecording(ValueError):
    """The file ends inside its compressed stream; the message says after which line."""


class RecordedFrame(msgspec.Struct, frozen=True):
    payload: bytes  # the event's exact bytes, annotation removed
    recv_ns: int | None  # our receive time; None in recordings made without it
    origin: Origin = "ws"


def annotate(payload: bytes, recv_ns: int, origin: Origin) -> bytes:
    """One recording line (without newline) for an event object."""
    if not payload.endswith(b"}"):
        raise ValueError(f"not a JSON object: {payload[:80]!r}")
    body = payload[:-1]
    separator = b"" if body.strip() == b"{" else b","
    extra = b"" if origin == "ws" else b',"_origin":"' + origin.encode() + b'"'
    return body + separator + b'"_recv_ns":' + str(recv_ns).encode() + extra + b"}"


def strip_annotation(line: bytes) -> RecordedFrame:
    """The recorded event of one line (the line itself when it carries no annotation)."""
    line = line.strip()
    match = _ANNOTATION.search(line)
    if match is None:
        return RecordedFrame(line, None)
    origin = (match.group(3) or b"ws").decode()
    if origin not in ORIGINS:
        return RecordedFrame(line, None)
    return RecordedFrame(line[: match.start()] + b"}", int(match.group(2)), cast(Origin, origin))


def open_recording(path: Path, mode: str) -> IO[bytes]:
    """A recording file opened in binary mode ("rb", "wb", "ab"), gzip by suffix."""
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, mode))
    return path.open(mode)


def read_recording(path: Path) -> Iterator[RecordedFrame]:
    """Every recorded event of a file, in file order (blank lines skipped); TruncatedRecording at a cut."""
    lines_read = 0
    with open_recording(path, "rb") as lines:
        try:
            for line in lines:
                lines_read += 1
                if line.strip():
                    yield strip_annotation(line)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise TruncatedRecording(f"{path}: recording truncated after line {lines_read} ({exc})") from None
