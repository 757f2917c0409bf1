"""Top-of-book features of one token, computed on integer units and returned as exact Decimals.

mid = (bid + ask) / 2 (exact: at most half a 0.0001 unit); spread = ask - bid;
microprice = (bid * ask_size + ask * bid_size) / (bid_size + ask_size) and
imbalance = (bid depth - ask depth) / (bid depth + ask depth) over the best `depth_levels` levels
of each side, both rounded half-even to 6 decimals; ask_sum / bid_sum add the best ask / best bid
of the token and of its binary complement (YES + NO).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from pets.pipelines.market_data.order_book import OrderBook
from pets.pipelines.market_data.units import PRICE_SCALE, half_price_decimal, price_decimal, size_decimal
from pets.schemas.market_data import TopOfBook

FEATURE_DECIMALS: Final = 6
DEFAULT_DEPTH_LEVELS: Final = 5


def rounded_ratio(numerator: int, denominator: int, decimals: int = FEATURE_DECIMALS) -> Decimal:
    """numerator / denominator rounded half-even to `decimals` places, exactly (denominator > 0)."""
    quotient, remainder = divmod(numerator * 10**decimals, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient & 1):
        quotient += 1
    return Decimal(quotient).scaleb(-decimals)


def top_of_book(
    book: OrderBook,
    complement: OrderBook | None,
    seq: int,
    depth_levels: int = DEFAULT_DEPTH_LEVELS,
    ts_ms: int | None = None,
) -> TopOfBook:
    """The TopOfBook message of `book` at `ts_ms` (default: its last update), with the complement
    token's book for the YES/NO sums."""
    bid_prices, ask_prices = book.bid_prices, book.ask_prices
    bid = bid_prices[-1] if bid_prices else None
    ask = ask_prices[0] if ask_prices else None
    bid_size = book.bid_sizes[bid] if bid is not None else 0
    ask_size = book.ask_sizes[ask] if ask is not None else 0
    mid = spread = microprice = None
    if bid is not None and ask is not None:
        mid = half_price_decimal(bid + ask)
        spread = price_decimal(ask - bid)
        # (price units x size units) / (size units x PRICE_SCALE) = price
        microprice = rounded_ratio(bid * ask_size + ask * bid_size, (bid_size + ask_size) * PRICE_SCALE)
    bid_depth = book.bid_depth_units(depth_levels)
    ask_depth = book.ask_depth_units(depth_levels)
    total = bid_depth + ask_depth
    imbalance = rounded_ratio(bid_depth - ask_depth, total) if total else None
    ask_sum = bid_sum = None
    paired = None
    if complement is not None:
        paired = complement.asset_id
        other_ask = complement.ask_prices[0] if complement.ask_prices else None
        other_bid = complement.bid_prices[-1] if complement.bid_prices else None
        if ask is not None and other_ask is not None:
            ask_sum = price_decimal(ask + other_ask)
        if bid is not None and other_bid is not None:
            bid_sum = price_decimal(bid + other_bid)
    return TopOfBook(
        asset_id=book.asset_id,
        market=book.market,
        ts_ms=book.ts_ms if ts_ms is None else ts_ms,
        best_bid=None if bid is None else price_decimal(bid),
        best_ask=None if ask is None else price_decimal(ask),
        best_bid_size=None if bid is None else size_decimal(bid_size),
        best_ask_size=None if ask is None else size_decimal(ask_size),
        mid=mid,
        microprice=microprice,
        spread=spread,
        imbalance=imbalance,
        tick_size=price_decimal(book.tick),
        stale=book.stale,
        paired_asset_id=paired,
        ask_sum=ask_sum,
        bid_sum=bid_sum,
        seq=seq,
    )
