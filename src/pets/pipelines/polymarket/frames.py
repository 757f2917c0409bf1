"""Market-channel messages as md.book events: split, keyed, and where they came from.

The venue may send one event object or a JSON array of events in one WebSocket message. md.book
carries one event per Kafka message, and its bytes are exactly the venue's bytes for that event:
an array is split with `msgspec.Raw`, which slices the original text, so nothing is re-encoded.
Every consumer of the stream (Kafka producer, recorder, replay) receives `MarketEvent`s through a
`FrameSink`, so live ingestion and replay take the same path.

Origins: "ws" is a venue frame, "rest" a REST /book snapshot taken to resync after a gap (re-shaped
as a `book` event), "pets" our own `continuity` events.
"""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

from pets.schemas.codec import encode
from pets.schemas.market_data import Continuity, ContinuityStatus

Origin = Literal["ws", "rest", "pets"]
ORIGINS: tuple[Origin, ...] = ("ws", "rest", "pets")
# Text keepalive/status messages of the market channel (not JSON).
PONG = b"PONG"
NO_NEW_ASSETS = b"NO NEW ASSETS"


class _AssetRef(msgspec.Struct, frozen=True):
    asset_id: str | None = None


class _EventHead(msgspec.Struct, frozen=True):
    """The routing fields of any market-channel event (everything else is left in the raw bytes)."""

    event_type: str | None = None
    asset_id: str | None = None
    market: str | None = None
    price_changes: list[_AssetRef] | None = None
    assets_ids: list[str] | None = None
    asset_ids: list[str] | None = None


_HEAD = msgspec.json.Decoder(_EventHead)
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])


class MarketEvent(msgspec.Struct, frozen=True):
    """One market-channel event: its exact bytes, Kafka key, type, the assets it touches, its market."""

    payload: bytes
    key: str
    event_type: str
    asset_ids: tuple[str, ...]
    market: str | None


class BadFrameError(ValueError):
    """A message that is not a market-channel event; the message is the dead-letter reason."""


class FrameSink(Protocol):
    """Where md.book events go (Kafka, a recording file, ...)."""

    def on_event(self, event: MarketEvent, recv_ns: int, origin: Origin) -> None: ...

    def on_dead_letter(self, reason: str, payload: bytes, recv_ns: int) -> None: ...

    def flush(self) -> None: ...


def split_events(message: bytes) -> list[bytes]:
    """The event byte strings of one message: the array's elements verbatim, or the object itself."""
    body = message.strip()
    if body.startswith(b"["):
        try:
            return [bytes(raw) for raw in _ARRAY.decode(body)]
        except msgspec.DecodeError as exc:
            raise BadFrameError(f"malformed JSON array: {exc}") from None
    return [body]


def parse_event(payload: bytes) -> MarketEvent:
    """Route one event: key = its market (md.book is keyed by market), else its first asset id.

    The market can be "" (the shared recordings did not record it): "" is then the key, so a market's
    frames still share one partition. BadFrameError when the bytes are not an event.
    """
    try:
        head = _HEAD.decode(payload)
    except msgspec.DecodeError as exc:
        raise BadFrameError(f"not a market-channel event: {exc}") from None
    if not head.event_type:
        raise BadFrameError("not a market-channel event: no event_type")
    assets: list[str] = []
    if head.asset_id:
        assets.append(head.asset_id)
    for change in head.price_changes or ():
        if change.asset_id and change.asset_id not in assets:
            assets.append(change.asset_id)
    for asset in (head.assets_ids or []) + (head.asset_ids or []):
        if asset not in assets:
            assets.append(asset)
    if head.market is None and not assets:
        raise BadFrameError(f"{head.event_type} event names neither an asset nor a market")
    key = head.market if head.market is not None else assets[0]
    return MarketEvent(payload, key, head.event_type, tuple(assets), head.market)


def events_of(message: bytes) -> list[MarketEvent]:
    """Every event of one WebSocket message (BadFrameError if any part is malformed)."""
    return [parse_event(part) for part in split_events(message)]


def continuity_event(
    market: str, asset_ids: tuple[str, ...], status: ContinuityStatus, reason: str, recv_ns: int
) -> MarketEvent:
    """Our continuity event for the given assets of one market, keyed by the market like its frames."""
    frame = Continuity(asset_ids=asset_ids, status=status, reason=reason, recv_ns=recv_ns, market=market)
    return MarketEvent(encode(frame), market, "continuity", asset_ids, market)


def rest_book_event(book: dict[str, object]) -> MarketEvent:
    """A REST /book body re-shaped as the market channel's `book` event (the same fields plus event_type)."""
    return parse_event(msgspec.json.encode({"event_type": "book", **book}))
