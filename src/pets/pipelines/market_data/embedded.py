"""The market-state pipeline in one process: frames -> parse -> books -> top of book, as a plain loop.

Same pure parts as the Bytewax flow (pets.flows.market_state), without a dataflow runtime per item:
what `pets replay --to embedded` and the embedded main job use, and what `pets bench market-state`
measures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal

import msgspec

from pets.pipelines.market_data.features import DEFAULT_DEPTH_LEVELS
from pets.pipelines.market_data.market import MarketStateEngine
from pets.pipelines.market_data.parser import FrameParser
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo, TopOfBook

BOOK_SOURCE = "market_state.book"


class AssetQuote(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The final best bid/ask of a book; `stale` when it never had a snapshot or lost continuity since."""

    best_bid: Decimal | None
    best_ask: Decimal | None
    stale: bool


class ReplaySummary(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Frames read = parsed (every event parsed and applied) + dead_lettered (once per frame, with
    the first reason); final best bid/ask per asset. The same counts as `pets replay --to kafka`."""

    frames: int
    parsed: int
    dead_lettered: int
    assets: dict[str, AssetQuote]


def run_embedded(
    frames: Iterable[bytes],
    *,
    market_infos: Iterable[MarketInfo] | None = None,
    dlq: Callable[[DeadLetter], object] | None = None,
    on_top_of_book: Callable[[TopOfBook], object] | None = None,
    depth_levels: int = DEFAULT_DEPTH_LEVELS,
) -> ReplaySummary:
    """Replay market-channel frames through parse + book + features; never raises on bad input.

    A frame is one event or a JSON array of events. When one of them does not parse, the whole
    frame is dead-lettered once (as the WebSocket client does before md.book) and none of its events
    is applied; a book that rejects an event (off a stated tick grid) dead-letters its frame once
    too. Dead letters go to `dlq`; every TopOfBook published goes to `on_top_of_book` (one per token
    per venue timestamp of its market).
    """
    parser = FrameParser()
    engine = MarketStateEngine(market_infos or (), depth_levels=depth_levels)
    on_event = engine.on_event
    parse = parser.parse
    published: list[TopOfBook] = []
    n_frames = parsed = dead = 0
    for raw in frames:
        n_frames += 1
        items = parse(raw)
        letter: DeadLetter | None = None
        for item in items:
            if type(item) is DeadLetter:
                letter = item
                break
        if letter is None:
            for item in items:
                reason = on_event(item, published)  # type: ignore[arg-type]
                if reason is not None and letter is None:
                    letter = DeadLetter.from_bytes(BOOK_SOURCE, reason, raw, ts_ns=time.time_ns())
        elif len(items) > 1:  # one letter for the whole frame, as the WebSocket client writes it
            letter = DeadLetter.from_bytes(letter.source, letter.reason, raw, ts_ns=letter.ts_ns)
        if letter is None:
            parsed += 1
        else:
            dead += 1
            if dlq is not None:
                dlq(letter)
        if published:
            if on_top_of_book is not None:
                for top in published:
                    on_top_of_book(top)
            published.clear()
    engine.flush(published)
    if on_top_of_book is not None:
        for top in published:
            on_top_of_book(top)
    assets = {
        asset_id: AssetQuote(
            best_bid=None if (bid := book.best_bid()) is None else bid.price,
            best_ask=None if (ask := book.best_ask()) is None else ask.price,
            stale=book.stale,
        )
        for books in engine.markets.values()
        for asset_id, book in books.books.items()
    }
    return ReplaySummary(frames=n_frames, parsed=parsed, dead_lettered=dead, assets=assets)
