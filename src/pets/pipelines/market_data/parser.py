"""Market-channel frames (bytes) -> validated book events, or dead letters with the reason. Never raises.

A frame is one JSON event or a JSON array of events. Each event is decoded into the wire Structs
of pets.schemas.market_data, then its money values are checked and converted into integer units
(units.py): a book snapshot becomes a `Snapshot`, every price-change shape becomes one
`LevelDeltas` per asset, a tick-size change a `TickSizeSet`. The other events (last trade, the
venue's best bid/ask, new market, market resolved, our continuity event) are validated and
passed on as the wire Structs. Anything wrong (bad JSON, wrong types, unknown event type,
negative size, price off the 0.0001 grid or outside [0, 1], missing asset, a user-channel
message) becomes one `DeadLetter` holding that event's JSON and a reason naming the problem; the
other events of the same array still go through.

Events without "event_type" (older venue versions, seen in the venue examples) are recognised by
their shape: bids+asks -> book, price_changes/changes -> price_change, new_tick_size ->
tick_size_change, winning_asset_id -> market_resolved, fee_rate_bps+price -> last_trade_price,
best_bid+best_ask -> best_bid_ask. User-channel messages (orders, trades) are rejected with
"not a market-channel event".
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Final, Protocol

import msgspec
from mypy_extensions import mypyc_attr

from pets.schemas.control import DeadLetter
from pets.schemas.market_data import (
    MARKET_EVENT_TYPES,
    AssetLevelChange,
    BestBidAsk,
    BookSnapshot,
    Continuity,
    LastTradePrice,
    LevelChange,
    MarketFrame,
    MarketResolved,
    NewMarket,
    PriceChange,
    PriceLevel,
    Side,
    TickSizeChange,
)
from pets.venue.units import (
    PRICE_UNITS,
    SIZE_UNITS,
    BadValue,
    price_units,
    size_units,
    tick_units,
    timestamp_ms,
)

DEFAULT_SOURCE: Final = "market_state.parse"
NOT_MARKET_CHANNEL: Final = "not a market-channel event"
USER_CHANNEL_TYPES: Final = frozenset({"order", "trade"})
_USER_CHANNEL_KEYS: Final = frozenset({"maker_orders", "taker_order_id", "associate_trades", "order_owner"})

Level = tuple[int, int]  # (price units, size units)
Change = tuple[bool, int, int]  # (is_bid, price units, size units); size 0 removes the level


class Snapshot(msgspec.Struct, frozen=True, gc=False):
    """A full book of one asset, levels in arrival order (the book sorts them)."""

    asset_id: str
    market: str
    ts_ms: int
    bids: list[Level]
    asks: list[Level]
    tick: int | None  # tick units when the snapshot states its tick size
    hash: str | None = None  # the venue's book hash


class LevelDeltas(msgspec.Struct, frozen=True, gc=False):
    """New total sizes of some levels of one asset's book (one venue frame, one asset)."""

    asset_id: str
    market: str
    ts_ms: int
    changes: list[Change]
    hash: str | None = None  # the venue's book hash after the changes
    # The last asset of a current-schema price_change frame: that frame carries every change of its
    # market at this timestamp, so the market's update is complete here (no need to wait for more).
    ends_update: bool = False


class TickSizeSet(msgspec.Struct, frozen=True, gc=False):
    asset_id: str
    market: str
    ts_ms: int
    tick: int


BookEvent = (
    Snapshot
    | LevelDeltas
    | TickSizeSet
    | LastTradePrice
    | BestBidAsk
    | NewMarket
    | MarketResolved
    | Continuity
)
ParsedItem = BookEvent | DeadLetter

_FAST_DECODER: Final = msgspec.json.Decoder(MarketFrame | list[MarketFrame])
_ANY_DECODER: Final = msgspec.json.Decoder()
_ENCODER: Final = msgspec.json.Encoder()


@mypyc_attr(allow_interpreted_subclasses=True)
class FrameParser:
    """Parses frames of one input; `source`, `topic` and the Kafka position go into dead letters."""

    __slots__ = ("source",)

    def __init__(self, source: str = DEFAULT_SOURCE) -> None:
        self.source = source

    def parse(
        self,
        raw: bytes,
        *,
        topic: str | None = None,
        key: bytes | str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> list[ParsedItem]:
        """Every event of the frame (book events or dead letters), in frame order."""
        try:
            decoded = _FAST_DECODER.decode(raw)
        except msgspec.DecodeError:
            return self._parse_slow(raw, topic, key, partition, offset)
        if type(decoded) is PriceChange and decoded.changes and decoded.asset_id:
            # the common frame (one asset's level changes) without the general dispatch below
            ts = decoded.timestamp
            if type(ts) is str and ts.isascii() and ts.isdigit():
                try:
                    return [
                        LevelDeltas(
                            decoded.asset_id, decoded.market, int(ts), _changes(decoded.changes), decoded.hash
                        )
                    ]
                except BadValue as exc:
                    return [self._dead(str(exc), raw, topic, key, partition, offset)]
        out: list[ParsedItem] = []
        try:
            for frame in decoded if isinstance(decoded, list) else (decoded,):
                _normalise(frame, out)
        except BadValue as exc:
            if isinstance(decoded, list):  # dead-letter just the bad element, with all its fields
                return self._parse_slow(raw, topic, key, partition, offset)
            return [self._dead(str(exc), raw, topic, key, partition, offset)]
        return out

    def _parse_slow(
        self,
        raw: bytes,
        topic: str | None,
        key: bytes | str | None,
        partition: int | None,
        offset: int | None,
    ) -> list[ParsedItem]:
        """The frame failed strict decoding: find which event is wrong and why (or infer its type)."""
        try:
            generic = _ANY_DECODER.decode(raw)
        except msgspec.DecodeError as exc:
            return [self._dead(_malformed_reason(raw, exc), raw, topic, key, partition, offset)]
        elements = generic if isinstance(generic, list) else [generic]
        single = not isinstance(generic, list)
        out: list[ParsedItem] = []
        for element in elements:
            payload = raw if single else _ENCODER.encode(element)
            reason = self._parse_element(element, out)
            if reason is not None:
                out.append(self._dead(reason, payload, topic, key, partition, offset))
        return out

    def _parse_element(self, element: Any, out: list[ParsedItem]) -> str | None:
        if not isinstance(element, dict):
            return f"expected a JSON object (an event), got {type(element).__name__}"
        event_type = element.get("event_type")
        if event_type is None:
            event_type = _infer_event_type(element)
            if event_type is None:
                return f"unknown event shape: no event_type and keys {sorted(element)[:12]}"
            element = {**element, "event_type": event_type}
        if not isinstance(event_type, str):
            return f"event_type must be a string, got {type(event_type).__name__}"
        if event_type in USER_CHANNEL_TYPES:
            return f"{NOT_MARKET_CHANNEL} (user-channel {event_type!r} message)"
        if event_type not in MARKET_EVENT_TYPES:
            return f"unknown event type {event_type!r}"
        try:
            frame = msgspec.convert(element, MarketFrame)
        except msgspec.ValidationError as exc:
            return f"{event_type}: {exc}"
        try:
            _normalise(frame, out)
        except BadValue as exc:
            return str(exc)
        return None

    def _dead(
        self,
        reason: str,
        payload: bytes,
        topic: str | None,
        key: bytes | str | None,
        partition: int | None,
        offset: int | None,
    ) -> DeadLetter:
        return DeadLetter.from_bytes(
            self.source,
            reason,
            payload,
            ts_ns=time.time_ns(),
            topic=topic,
            key=key,
            partition=partition,
            offset=offset,
        )


def event_venue_ms(event: Any) -> int | None:
    """The venue time of a parsed event: its `ts_ms`, else its venue `timestamp` (last trade, best
    bid/ask, new market, market resolved). `pets run` and the executor flow move their clocks by it."""
    ts = getattr(event, "ts_ms", None)
    if ts is not None:
        return int(ts)
    timestamp = getattr(event, "timestamp", None)
    if isinstance(timestamp, int):
        return timestamp
    if isinstance(timestamp, str) and timestamp.isdigit():
        return int(timestamp)
    return None


def _malformed_reason(raw: bytes, exc: msgspec.DecodeError) -> str:
    text = raw.strip()
    if text in (b"PONG", b"PING", b"NO NEW ASSETS"):
        return f"malformed JSON: venue control text {text.decode()!r}, not an event"
    return f"malformed JSON: {exc}"


def _infer_event_type(element: dict[str, Any]) -> str | None:
    """The market event type of an event sent without "event_type", "order"/"trade" for user ones."""
    keys = element.keys()
    if "type" in keys or not _USER_CHANNEL_KEYS.isdisjoint(keys):
        return "trade" if "maker_orders" in keys or element.get("type") == "TRADE" else "order"
    if "bids" in keys and "asks" in keys:
        return "book"
    if "price_changes" in keys or "changes" in keys:
        return "price_change"
    if "new_tick_size" in keys:
        return "tick_size_change"
    if "winning_asset_id" in keys:
        return "market_resolved"
    if "fee_rate_bps" in keys and "price" in keys:
        return "last_trade_price"
    if "best_bid" in keys and "best_ask" in keys:
        return "best_bid_ask"
    return None


def _levels(levels: tuple[PriceLevel, ...], side: str) -> list[Level]:
    prices, sizes = PRICE_UNITS, SIZE_UNITS
    out: list[Level] = []
    for level in levels:
        price, size = prices.get(level.price), sizes.get(level.size)
        if price is None or size is None:
            try:
                price, size = price_units(level.price), size_units(level.size)
            except BadValue as exc:
                raise BadValue(f"{side} level {level.price}@{level.size}: {exc}") from None
        out.append((price, size))
    return out


class _PriceSideSize(Protocol):
    @property
    def price(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def size(self) -> str: ...


def _changes(changes: Iterable[_PriceSideSize]) -> list[Change]:
    """(is_bid, price units, size units) of each change, validated."""
    prices, sizes = PRICE_UNITS, SIZE_UNITS
    out: list[Change] = []
    for change in changes:
        price, size = prices.get(change.price), sizes.get(change.size)
        if price is None or size is None:
            try:
                price, size = price_units(change.price), size_units(change.size)
            except BadValue as exc:
                raise BadValue(f"{change.side} change {change.price}@{change.size}: {exc}") from None
        out.append((change.side == "BUY", price, size))
    return out


def _asset(asset_id: str | None, what: str) -> str:
    if not asset_id:
        raise BadValue(f"{what} without asset_id")
    return asset_id


def _ts(value: str | int) -> int:
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    return timestamp_ms(value)


def _normalise(frame: MarketFrame, out: list[Any]) -> None:
    """Append the validated book event(s) of one wire event; BadValue names what is wrong."""
    if type(frame) is PriceChange:
        _normalise_price_change(frame, out)
    elif type(frame) is BookSnapshot:
        out.append(
            Snapshot(
                _asset(frame.asset_id, "book"),
                frame.market,
                _ts(frame.timestamp),
                _levels(frame.bids, "bid"),
                _levels(frame.asks, "ask"),
                tick_units(frame.tick_size) if frame.tick_size else None,
                frame.hash,
            )
        )
    elif type(frame) is TickSizeChange:
        out.append(
            TickSizeSet(
                _asset(frame.asset_id, "tick_size_change"),
                frame.market,
                timestamp_ms(frame.timestamp),
                tick_units(frame.new_tick_size),
            )
        )
    elif type(frame) is LastTradePrice:
        _asset(frame.asset_id, "last_trade_price")
        timestamp_ms(frame.timestamp)
        _changes((frame,))
        out.append(frame)
    elif type(frame) is BestBidAsk:
        _asset(frame.asset_id, "best_bid_ask")
        timestamp_ms(frame.timestamp)
        for price in (frame.best_bid, frame.best_ask):
            if price:
                price_units(price)
        out.append(frame)
    elif type(frame) is NewMarket or type(frame) is MarketResolved:
        timestamp_ms(frame.timestamp)
        out.append(frame)
    elif type(frame) is Continuity:
        if not frame.asset_ids:
            raise BadValue("continuity without asset_ids")
        out.append(frame)
    else:  # pragma: no cover - the union is closed
        raise BadValue(f"unhandled event {type(frame).__name__}")


def _normalise_price_change(frame: PriceChange, out: list[Any]) -> None:
    ts = _ts(frame.timestamp)
    if frame.changes is not None:  # the per-asset schema of the recordings: the hot path
        if not frame.changes:
            raise BadValue("price_change with an empty changes list")
        out.append(
            LevelDeltas(
                _asset(frame.asset_id, "price_change"), frame.market, ts, _changes(frame.changes), frame.hash
            )
        )
    elif frame.price_changes is not None:
        by_asset: dict[str, list[AssetLevelChange]] = {}
        for item in frame.price_changes:
            by_asset.setdefault(_asset(item.asset_id, "price_changes entry"), []).append(item)
        if not by_asset:
            raise BadValue("price_change with an empty price_changes list")
        last = len(by_asset) - 1
        out.extend(
            LevelDeltas(asset_id, frame.market, ts, _changes(items), items[-1].hash, i == last)
            for i, (asset_id, items) in enumerate(by_asset.items())
        )
    elif frame.price is not None and frame.side is not None and frame.size is not None:
        inline = LevelChange(price=frame.price, side=frame.side, size=frame.size)
        asset_id = _asset(frame.asset_id, "price_change")
        out.append(LevelDeltas(asset_id, frame.market, ts, _changes((inline,)), frame.hash))
    else:
        raise BadValue("price_change without price_changes, changes or price/side/size")
