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

from pets.schemas.market_data import TopOfBook
from pets.venue.order_book import OrderBook
from pets.venue.units import (
    HALF_PRICE_DECIMALS,
    PRICE_DECIMALS_BY_UNITS,
    PRICE_SCALE,
    SIZE_DECIMALS_BY_UNITS,
    half_price_decimal,
    price_decimal,
    size_decimal,
)

_ONE_MILLIONTH: Final = Decimal("1e-6")
_ZERO: Final = Decimal(0)
DEFAULT_DEPTH_LEVELS: Final = 5


def rounded_ratio(numerator: int, denominator: int) -> Decimal:
    """numerator / denominator rounded half-even to 6 decimal places, exactly (denominator > 0)."""
    quotient, remainder = divmod(numerator * 1_000_000, denominator)
    twice = remainder + remainder
    if twice > denominator or (twice == denominator and quotient & 1):
        quotient += 1
    if not quotient:
        return _ZERO  # not 0E-6
    return Decimal(quotient) * _ONE_MILLIONTH  # exact (28 digits of precision); faster than scaleb


def top_of_book(
    book: OrderBook,
    complement: OrderBook | None,
    seq: int,
    depth_levels: int = DEFAULT_DEPTH_LEVELS,
    ts_ms: int | None = None,
) -> TopOfBook:
    """The TopOfBook message of `book` at `ts_ms` (default: its last update), with the complement
    token's book for the YES/NO sums. Hot path: cached Decimals are read inline."""
    prices, sizes = PRICE_DECIMALS_BY_UNITS, SIZE_DECIMALS_BY_UNITS
    bid_prices, ask_prices, bid_sizes, ask_sizes = (
        book.bid_prices,
        book.ask_prices,
        book.bid_sizes,
        book.ask_sizes,
    )
    best_bid = best_ask = best_bid_size = best_ask_size = mid = spread = microprice = None
    if bid_prices:
        bid = bid_prices[-1]
        bid_size = bid_sizes[bid]
        best_bid = prices.get(bid) or price_decimal(bid)
        best_bid_size = sizes.get(bid_size) or size_decimal(bid_size)
    if ask_prices:
        ask = ask_prices[0]
        ask_size = ask_sizes[ask]
        best_ask = prices.get(ask) or price_decimal(ask)
        best_ask_size = sizes.get(ask_size) or size_decimal(ask_size)
        if bid_prices:
            mid = HALF_PRICE_DECIMALS.get(bid + ask) or half_price_decimal(bid + ask)
            spread = prices.get(ask - bid) or price_decimal(ask - bid)
            # (price units x size units) / (size units x PRICE_SCALE) = price
            microprice = rounded_ratio(bid * ask_size + ask * bid_size, (bid_size + ask_size) * PRICE_SCALE)
    bid_depth = ask_depth = 0
    for price in bid_prices[-depth_levels:]:
        bid_depth += bid_sizes[price]
    for price in ask_prices[:depth_levels]:
        ask_depth += ask_sizes[price]
    total = bid_depth + ask_depth
    imbalance = rounded_ratio(bid_depth - ask_depth, total) if total else None
    paired = ask_sum = bid_sum = None
    if complement is not None:
        paired = complement.asset_id
        if ask_prices and complement.ask_prices:
            ask_sum = price_decimal(ask_prices[0] + complement.ask_prices[0])
        if bid_prices and complement.bid_prices:
            bid_sum = price_decimal(bid_prices[-1] + complement.bid_prices[-1])
    return TopOfBook(
        book.asset_id,
        book.market,
        book.ts_ms if ts_ms is None else ts_ms,
        best_bid,
        best_ask,
        best_bid_size,
        best_ask_size,
        mid,
        microprice,
        spread,
        imbalance,
        prices.get(book.tick) or price_decimal(book.tick),
        book.stale,
        paired,
        ask_sum,
        bid_sum,
        seq,
    )
