"""Market-data wire messages: the venue's market-channel frames, our top of book, the market universe.

Venue frames keep the venue's shapes and strings (prices, sizes and timestamps arrive as JSON
strings such as "0.45" and "1751420714913"); they do not forbid unknown fields because the venue
adds fields without notice. The parser (pets.pipelines.market_data.parser) validates the values
(tick grid, [0, 1], sizes >= 0) and turns them into exact integer units.

`MarketFrame` is the tagged union of one market-channel event on "event_type"; md.book carries
one event per message (the venue may send a JSON array of events: the recorder splits it, the
parser accepts both). `Continuity` is ours: the WebSocket client says when a subscription lost
continuity (reconnect, silent stall) and when a REST snapshot resynced it; a book is stale in
between.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import msgspec

Side = Literal["BUY", "SELL"]  # BUY = the bid side of the book
ContinuityStatus = Literal["lost", "resynced"]
VenueTimestamp = str | int  # venue milliseconds; the venue sends a string


class _VenueEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="event_type"):
    """Base of every venue market-channel event (unknown fields are ignored, not rejected)."""


class PriceLevel(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    price: str
    size: str


class BookSnapshot(_VenueEvent, frozen=True, kw_only=True, tag="book"):
    """Full L2 snapshot of one token; both sides arrive best-LAST (bids ascending, asks descending)."""

    asset_id: str
    market: str
    timestamp: VenueTimestamp
    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]
    hash: str | None = None
    tick_size: str | None = None
    last_trade_price: str | None = None


class LevelChange(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One level of the old per-asset `changes` schema: `size` is the new total, "0" removes it."""

    price: str
    side: Side
    size: str


class AssetLevelChange(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One level of the current `price_changes` schema (since 2025-09-15), with the venue's best prices."""

    asset_id: str
    price: str
    side: Side
    size: str
    hash: str | None = None
    best_bid: str | None = None
    best_ask: str | None = None


class PriceChange(_VenueEvent, frozen=True, kw_only=True, tag="price_change"):
    """Level updates in one of three venue shapes.

    current: `price_changes` (each entry names its asset); before 2025-09-15: one asset per frame
    with `changes`; oldest: one level inline (`price`, `side`, `size`). The parser normalises them.
    """

    market: str
    timestamp: VenueTimestamp
    asset_id: str | None = None
    hash: str | None = None
    price_changes: tuple[AssetLevelChange, ...] | None = None
    changes: tuple[LevelChange, ...] | None = None
    price: str | None = None
    side: Side | None = None
    size: str | None = None


class LastTradePrice(_VenueEvent, frozen=True, kw_only=True, tag="last_trade_price"):
    asset_id: str
    market: str
    price: str
    size: str
    side: Side  # taker side
    timestamp: VenueTimestamp
    fee_rate_bps: str | None = None
    transaction_hash: str | None = None


class TickSizeChange(_VenueEvent, frozen=True, kw_only=True, tag="tick_size_change"):
    asset_id: str
    market: str
    old_tick_size: str
    new_tick_size: str
    timestamp: VenueTimestamp


class BestBidAsk(_VenueEvent, frozen=True, kw_only=True, tag="best_bid_ask"):
    asset_id: str
    market: str
    best_bid: str | None = None
    best_ask: str | None = None
    spread: str | None = None
    timestamp: VenueTimestamp


class NewMarket(_VenueEvent, frozen=True, kw_only=True, tag="new_market"):
    id: str
    market: str
    timestamp: VenueTimestamp
    assets_ids: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    question: str = ""
    slug: str = ""
    description: str = ""
    condition_id: str | None = None
    clob_token_ids: tuple[str, ...] = ()
    order_price_min_tick_size: str | None = None
    active: bool | None = None
    tags: tuple[str, ...] = ()
    event_message: dict[str, Any] | None = None


class MarketResolved(_VenueEvent, frozen=True, kw_only=True, tag="market_resolved"):
    market: str
    winning_asset_id: str
    timestamp: VenueTimestamp
    id: str | None = None
    assets_ids: tuple[str, ...] = ()
    winning_outcome: str | None = None
    tags: tuple[str, ...] = ()


class Continuity(_VenueEvent, frozen=True, kw_only=True, tag="continuity", forbid_unknown_fields=True):
    """Ours: a subscription lost continuity ("lost") or was resynced from a REST snapshot ("resynced").

    `market` (the md.book key, like every event's) names the market of `asset_ids`: one event per
    market, so it lands on the partition of that market's frames.
    """

    asset_ids: tuple[str, ...]
    status: ContinuityStatus
    reason: str
    recv_ns: int
    market: str


MarketFrame = (
    BookSnapshot
    | PriceChange
    | LastTradePrice
    | TickSizeChange
    | BestBidAsk
    | NewMarket
    | MarketResolved
    | Continuity
)

MARKET_EVENT_TYPES: tuple[str, ...] = (
    "book",
    "price_change",
    "last_trade_price",
    "tick_size_change",
    "best_bid_ask",
    "new_market",
    "market_resolved",
    "continuity",
)


class TopOfBook(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """Top of book of one token after every frame of one venue timestamp of its market was applied.

    mid = (bid + ask) / 2; microprice = (bid * ask_size + ask * bid_size) / (bid_size + ask_size);
    imbalance = (bid depth - ask depth) / (bid depth + ask depth) over the top N levels, in [-1, 1];
    ask_sum / bid_sum add this token's and its binary complement's best ask / best bid (an ask_sum
    below 1 is a buy-both arbitrage). `seq` counts emissions per asset (1, 2, ...).

    Not kw_only (unlike our other messages): every field is required, keyword construction works
    the same, and the book builds one per update positionally, which is 6x faster in msgspec.
    gc=False: it holds only scalars, so it can never be part of a reference cycle.
    """

    asset_id: str
    market: str
    ts_ms: int
    best_bid: Decimal | None
    best_ask: Decimal | None
    best_bid_size: Decimal | None
    best_ask_size: Decimal | None
    mid: Decimal | None
    microprice: Decimal | None
    spread: Decimal | None
    imbalance: Decimal | None
    tick_size: Decimal
    stale: bool
    paired_asset_id: str | None
    ask_sum: Decimal | None
    bid_sum: Decimal | None
    seq: int


def same_top(held: TopOfBook, top: TopOfBook) -> bool:
    """Whether `top` shows what `held` showed: only its seq and time moved forward (the frame changed
    levels deeper than the features look). Risk and the bots act on a top only when this is False,
    in the embedded loop and in the flows alike (docs/running.md), so both decide on the same tops.
    A top from before the held one (a replay that went back in time) is news: it starts a timeline."""
    return top.ts_ms >= held.ts_ms and shows(held) == shows(top)


def mark_price(top: TopOfBook, last: Decimal | None) -> Decimal | None:
    """What a position in the token is worth by its book, `last` being its previous mark: the mid;
    with one side of the book empty, the last mark held within what the side still there proves (no
    more than the best ask, no less than the best bid). Keeping the last mid alone valued lottery
    tickets bought at 0.001 after a game's end, when only asks down to 0.001 were left, at 0.35;
    taking the side alone let a moment without bids mark a holding at a far ask. None: no mark yet."""
    return mark_of(top.mid, top.best_bid, top.best_ask, last)


def mark_of(
    mid: Decimal | None, bid: Decimal | None, ask: Decimal | None, last: Decimal | None
) -> Decimal | None:
    """`mark_price` from a top's stored fields (the control API reads them from top_of_book rows)."""
    if mid is not None:
        return mid
    if last is None:
        return ask if ask is not None else bid
    if ask is not None and last > ask:
        return ask
    if bid is not None and last < bid:
        return bid
    return last


def shows(top: TopOfBook) -> tuple[object, ...]:
    """What a top of book shows: every field but its token, market, time and seq (`same_top`)."""
    return msgspec.structs.astuple(top)[3:16]


FINAL_PRICES = frozenset({Decimal(0), Decimal("0.5"), Decimal(1)})  # what a resolved token can pay


class MarketInfo(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One market of the universe (from Gamma); `token_ids[i]` pays out on `outcomes[i]`."""

    condition_id: str
    market_id: str
    question: str
    slug: str
    category: str
    token_ids: tuple[str, ...]
    outcomes: tuple[str, ...]
    neg_risk: bool
    neg_risk_market_id: str | None = None
    tick_size: Decimal
    min_order_size: Decimal
    end_date_ms: int | None = None
    active: bool
    closed: bool
    accepting_orders: bool
    outcome_prices: tuple[Decimal, ...] | None = None
    winning_asset_id: str | None = None
    fee_rate: Decimal | None = None

    def payouts(self) -> dict[str, Decimal] | None:
        """What each token pays per share once the market resolved, None while it is unresolved.

        Resolved = the venue named a winning token (market_resolved / Gamma), or the market is closed
        with final outcome prices (1/0, or 0.5/0.5 for a split resolution); a closed market still
        showing trading prices is not settled."""
        if self.winning_asset_id is not None:
            return {t: Decimal(1) if t == self.winning_asset_id else Decimal(0) for t in self.token_ids}
        prices = self.outcome_prices
        if self.closed and prices is not None and sum(prices) == 1 and all(p in FINAL_PRICES for p in prices):
            return dict(zip(self.token_ids, prices, strict=True))
        return None

    def complement(self, asset_id: str) -> str | None:
        """The other token of a binary market (YES <-> NO), None if not binary or not ours."""
        if len(self.token_ids) != 2 or asset_id not in self.token_ids:
            return None
        return self.token_ids[1] if self.token_ids[0] == asset_id else self.token_ids[0]
