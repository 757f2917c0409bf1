"""Event splitting, keys and the recording annotation: byte-exact, on venue-shaped messages."""

from __future__ import annotations

import pytest

from pets.pipelines.polymarket.frames import BadFrameError, events_of, parse_event, split_events
from pets.pipelines.polymarket.recording import RecordedFrame, annotate, strip_annotation

BOOK = b'{"event_type":"book","asset_id":"71","market":"0xdd","bids":[{"price":"0.5","size":"2"}],"asks":[]}'
V2 = (
    b'{"market": "0x5f", "price_changes": [{"asset_id": "52", "price": "0.6", "side": "BUY", "size": "3300"},'
    b' {"asset_id": "53", "price": "0.4", "side": "SELL", "size": "3300"}],'
    b' "event_type": "price_change", "timestamp": "1729084877448"}'
)
RESOLVED = (
    b'{"event_type":"market_resolved","assets_ids":["76","31"],"winning_asset_id":"76","timestamp":"1"}'
)


def test_an_array_splits_into_the_exact_bytes_of_its_events() -> None:
    message = b"[" + BOOK + b" ,\n  " + V2 + b"]"
    assert split_events(message) == [BOOK, V2]
    assert split_events(b"  " + BOOK + b"\n") == [BOOK]  # whitespace around one object is not the event
    unicode = '{"event_type":"new_market","market":"0x1","question":"Qué pasará? ✓"}'.encode()
    assert split_events(b"[" + unicode + b"]") == [unicode]


def test_events_are_keyed_by_market_else_by_their_first_asset() -> None:
    book, v2, resolved = events_of(b"[" + BOOK + b"," + V2 + b"," + RESOLVED + b"]")
    assert (book.key, book.asset_ids, book.market) == ("0xdd", ("71",), "0xdd")
    assert (v2.key, v2.asset_ids, v2.event_type) == ("0x5f", ("52", "53"), "price_change")
    assert (resolved.key, resolved.asset_ids, resolved.market) == ("76", ("76", "31"), None)
    recorded = parse_event(b'{"event_type":"book","asset_id":"9","market":"","bids":[],"asks":[]}')
    assert recorded.key == "" and recorded.market == ""  # the shared recordings carry no market


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"not json", "not a market-channel event"),
        (b'{"asset_id":"1"}', "no event_type"),
        (b'[{"event_type":"book"', "malformed JSON array"),
        (b'{"event_type":"book","bids":[]}', "names neither an asset nor a market"),
        (b'{"event_type":"book","asset_id":7}', "not a market-channel event"),
    ],
)
def test_bad_messages_raise_with_a_reason(message: bytes, reason: str) -> None:
    with pytest.raises(BadFrameError, match=reason):
        events_of(message)


@pytest.mark.parametrize("payload", [BOOK, V2, b"{}", b'{"event_type":"book" }'])
@pytest.mark.parametrize("origin", ["ws", "rest", "pets"])
def test_annotation_round_trips_exactly(payload: bytes, origin: str) -> None:
    line = annotate(payload, 1750803262061123456, origin)  # type: ignore[arg-type]
    assert line.startswith(payload[:-1]) and b"\n" not in line
    assert strip_annotation(line + b"\n") == RecordedFrame(payload, 1750803262061123456, origin)  # type: ignore[arg-type]


def test_a_line_without_annotation_is_returned_as_is() -> None:
    assert strip_annotation(BOOK + b"\n") == RecordedFrame(BOOK, None, "ws")
