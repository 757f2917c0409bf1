"""The books of one market and when their top of book is published; and the router over all markets.

A binary market's two tokens mirror each other (a YES bid at p is a NO ask at 1 - p) and the
venue sends a mirrored update as frames for both tokens with the same timestamp. Publishing
after the first of them would show a phantom (half-applied) state, so book events of one market
are grouped by venue timestamp and the top of book of every token touched (and of its
complement, whose YES+NO sums changed) is published once the group is complete: when both tokens
of the pair were touched, or at the end of a current-schema `price_change` frame (it carries every
change of its market at that timestamp), or when an event with another timestamp arrives, or on
`flush()` at the end of the input. The rule depends only on the input order, so a replay publishes the same
messages with the same `seq` numbers (the database deduplicates on them).

Pairs come from MarketInfo / new_market (token ids) when known, else from the first two tokens
seen under the same `market` (recordings have no condition ids). A MarketInfo may also arrive while
the market runs (md.markets): it restates the pair and the tick of the books held and to come.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, cast

from mypy_extensions import mypyc_attr

from pets.pipelines.market_data.features import DEFAULT_DEPTH_LEVELS, top_of_book
from pets.pipelines.market_data.parser import BookEvent, LevelDeltas, Snapshot, TickSizeSet
from pets.schemas.market_data import Continuity, MarketInfo, NewMarket, TopOfBook
from pets.venue.order_book import OrderBook
from pets.venue.units import BadValue, tick_units

_NO_TS: Final = -1
_BOOK_EVENTS: Final = frozenset({LevelDeltas, Snapshot, TickSizeSet})


@mypyc_attr(allow_interpreted_subclasses=True)
class MarketBooks:
    """The state of one market (the unit the Kafka flow keys by): its books, pairing and pending group."""

    __slots__ = (
        "_group_ts",
        "_stated_tick",
        "_touched",
        "books",
        "depth_levels",
        "market",
        "pair",
        "pair_stated",
        "seq",
    )

    def __init__(
        self, market: str, info: MarketInfo | None = None, *, depth_levels: int = DEFAULT_DEPTH_LEVELS
    ) -> None:
        self.market = market
        self.books: dict[str, OrderBook] = {}
        self.pair: dict[str, str] = {}  # asset -> its binary complement
        self.pair_stated = False
        self.seq: dict[str, int] = {}  # TopOfBook messages published per asset
        self.depth_levels = depth_levels
        self._stated_tick: int | None = None
        self._group_ts = _NO_TS
        self._touched: list[str] = []
        if info is not None:
            self.on_market_info(info.token_ids, tick_units(str(info.tick_size)))

    def on_event(self, event: BookEvent, out: list[TopOfBook]) -> str | None:
        """Apply one event, appending any top of book due to `out`; a reason when it is rejected."""
        kind = type(event)
        if kind in _BOOK_EVENTS:
            return self.on_book_event(event, out)  # type: ignore[arg-type]
        if kind is Continuity:
            self.on_continuity(event, out)  # type: ignore[arg-type]
        elif kind is NewMarket:
            return self._on_new_market(event)  # type: ignore[arg-type]
        return None

    def on_book_event(self, event: LevelDeltas | Snapshot | TickSizeSet, out: list[TopOfBook]) -> str | None:
        """Apply an event that changes a book; publish the group it completes (or the one it ends)."""
        ts = event.ts_ms
        if ts != self._group_ts:
            if self._touched:
                self._publish(out)
            self._group_ts = ts
        asset_id = event.asset_id
        book = self.books.get(asset_id)
        if book is None:
            book = self._add_book(asset_id)
        if type(event) is LevelDeltas:
            reason = book.apply_changes(event.changes, ts)
        elif type(event) is Snapshot:
            reason = book.apply_snapshot(event.bids, event.asks, ts, event.tick)
        else:
            book.set_tick(cast(TickSizeSet, event).tick)
            book.ts_ms = ts
            reason = None
        if reason is not None:
            return reason
        touched = self._touched
        if asset_id not in touched:
            touched.append(asset_id)
        complement = self.pair.get(asset_id)
        if (complement is not None and complement in touched) or (
            type(event) is LevelDeltas and event.ends_update
        ):
            self._publish(out)  # both tokens of the mirrored update are in: the group is complete
        return None

    def on_continuity(self, event: Continuity, out: list[TopOfBook]) -> None:
        """Continuity lost: publish what is pending, then mark the books stale (and say so)."""
        if event.status != "lost":
            return  # "resynced" comes with fresh snapshots, which clear `stale` themselves
        if self._touched:
            self._publish(out)
        stale = [a for a in event.asset_ids if a in self.books]
        for asset_id in stale:
            self.books[asset_id].mark_stale()
        self._touched = stale
        if stale:
            self._publish(out)

    def on_universe_info(self, info: MarketInfo, tick: int) -> None:
        """A MarketInfo of the universe (md.markets) with its tick in units: the pair and the stated tick.

        It applies when it names this market (condition id live, Gamma id in recordings). The state
        of frames that name no market ("" in some recordings) may hold several markets: there it
        states the pair and tick of the info's tokens only, and only once it holds one of them.
        """
        if self.market in (info.condition_id, info.market_id):
            self.on_market_info(info.token_ids, tick)
            return
        held = [self.books[t] for t in info.token_ids if t in self.books] if self.market == "" else []
        if not held:
            return
        for book in held:
            book.set_tick(tick)
        if len(info.token_ids) == 2:
            yes, no = info.token_ids
            self.pair[yes], self.pair[no] = no, yes
            self.pair_stated = True

    def on_market_info(self, token_ids: Iterable[str], tick: int | None) -> None:
        tokens = tuple(token_ids)
        if len(tokens) == 2:
            self.pair = {tokens[0]: tokens[1], tokens[1]: tokens[0]}
            self.pair_stated = True
        if tick is not None:
            self._stated_tick = tick
            for book in self.books.values():
                book.set_tick(tick)

    def flush(self, out: list[TopOfBook]) -> None:
        """Publish the pending group (end of input)."""
        if self._touched:
            self._publish(out)

    def _on_new_market(self, event: NewMarket) -> str | None:
        tokens = event.clob_token_ids or event.assets_ids
        try:
            tick = tick_units(event.order_price_min_tick_size) if event.order_price_min_tick_size else None
        except BadValue as exc:
            return f"new_market: {exc}"
        self.on_market_info(tokens, tick)
        return None

    def _add_book(self, asset_id: str) -> OrderBook:
        book = self.books[asset_id] = OrderBook(asset_id, self.market, tick=self._stated_tick)
        self.seq[asset_id] = 0
        if not self.pair_stated:
            # learn the pair from the first two tokens; a third token means it is not a binary market
            assets = list(self.books)
            self.pair = {assets[0]: assets[1], assets[1]: assets[0]} if len(assets) == 2 else {}
        return book

    def _publish(self, out: list[TopOfBook]) -> None:
        touched = self._touched
        books, pair, seq, ts = self.books, self.pair, self.seq, self._group_ts
        due = list(touched)
        for asset_id in touched:
            complement = pair.get(asset_id)
            if complement is not None and complement not in due and complement in books:
                due.append(complement)
        for asset_id in due:
            n = seq[asset_id] = seq[asset_id] + 1
            complement = pair.get(asset_id)
            out.append(
                top_of_book(
                    books[asset_id],
                    books.get(complement) if complement else None,
                    n,
                    self.depth_levels,
                    ts if ts != _NO_TS else None,
                )
            )
        self._touched = []


@mypyc_attr(allow_interpreted_subclasses=True)
class MarketStateEngine:
    """Routes book events to the MarketBooks of their market (in one process; the flow keys by market)."""

    def __init__(
        self, market_infos: Iterable[MarketInfo] = (), *, depth_levels: int = DEFAULT_DEPTH_LEVELS
    ) -> None:
        self.markets: dict[str, MarketBooks] = {}
        self.depth_levels = depth_levels
        self._infos = dict(info_lookup(market_infos))

    def on_universe_info(self, info: MarketInfo) -> str | None:
        """A MarketInfo of md.markets while running: the pair and tick of its books, held and to come
        (so these books judge prices as the market_state flow's do); a reason when its tick is bad."""
        try:
            tick = tick_units(format(info.tick_size, "f"))
        except BadValue as exc:
            return f"market {info.condition_id}: {exc}"
        self._infos[info.condition_id] = self._infos[info.market_id] = info
        for books in self.markets.values():
            books.on_universe_info(info, tick)
        return None

    def on_event(self, event: BookEvent, out: list[TopOfBook]) -> str | None:
        """Apply one event, appending any top of book due to `out`; a reason when it is rejected."""
        market = event.market
        if market is None:  # a continuity event without its market: every market checks its assets
            for market_books in self.markets.values():
                market_books.on_event(event, out)
            return None
        books = self.markets.get(market)
        if books is None:
            books = self.markets[market] = MarketBooks(
                market, self._infos.get(market), depth_levels=self.depth_levels
            )
        if type(event) in _BOOK_EVENTS:
            return books.on_book_event(event, out)  # type: ignore[arg-type]
        return books.on_event(event, out)

    def flush(self, out: list[TopOfBook]) -> None:
        """Publish every pending group (end of input)."""
        for books in self.markets.values():
            books.flush(out)

    def book(self, asset_id: str) -> OrderBook | None:
        for books in self.markets.values():
            book = books.books.get(asset_id)
            if book is not None:
                return book
        return None


def info_lookup(market_infos: Iterable[MarketInfo]) -> Mapping[str, MarketInfo]:
    """MarketInfo by condition id and by Gamma market id (recordings name markets by the latter)."""
    lookup: dict[str, MarketInfo] = {}
    for info in market_infos:
        lookup[info.condition_id] = info
        lookup[info.market_id] = info
    return lookup
