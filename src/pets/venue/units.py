"""Exact integer units for prices and sizes, and the Decimal conversions at the edges.

Prices are integers of 1e-4 (the venue's finest tick, 0.0001), so 0.45 is 4500 and every tick
size (0.1, 0.01, 0.005, 0.0025, 0.001, 0.0001) is a whole number of units. Sizes are integers of
1e-6 shares (the outcome tokens have 6 decimals). The book works on these integers only; Decimal
appears when a value leaves it (TopOfBook, level walks), through small caches because the same
prices recur all the time.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

PRICE_SCALE: Final = 10_000
SIZE_SCALE: Final = 1_000_000
PRICE_DECIMALS: Final = 4
SIZE_DECIMALS: Final = 6
ONE: Final = PRICE_SCALE  # price 1.00 in units
DEFAULT_TICK: Final = 100  # 0.01, the venue default until a tick is stated

_CACHE_LIMIT: Final = 50_000


class BadValue(ValueError):
    """A venue value that is not a valid price, size, tick or timestamp; the message is the reason."""


# text -> units of every valid price/size seen; the hot loops read them directly (a miss, or a bad
# value, goes through price_units/size_units, which validate and fill them).
PRICE_UNITS: dict[str, int] = {}
SIZE_UNITS: dict[str, int] = {}


def price_units(text: str) -> int:
    """Units of 1e-4 of a venue price string in [0, 1] on the 0.0001 grid, else BadValue."""
    units = PRICE_UNITS.get(text)
    if units is not None:
        return units
    units = _parse_fixed(text, "price", PRICE_DECIMALS)
    if units > ONE:
        raise BadValue(f"price {text} is outside [0, 1]")
    _remember(PRICE_UNITS, text, units)
    return units


def size_units(text: str) -> int:
    """Units of 1e-6 of a venue size string (>= 0, at most 6 decimals), else BadValue."""
    units = SIZE_UNITS.get(text)
    if units is None:
        units = _parse_fixed(text, "size", SIZE_DECIMALS)
        _remember(SIZE_UNITS, text, units)
    return units


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """Bounded caches: start over when full (the working set of a market refills it quickly)."""
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def tick_units(text: str) -> int:
    """Units of a tick size string: a positive price step on the 0.0001 grid, at most 0.1."""
    units = _parse_fixed(text, "tick size", PRICE_DECIMALS)
    if not 0 < units <= PRICE_SCALE // 10:
        raise BadValue(f"tick size {text} is not in (0, 0.1]")
    return units


def timestamp_ms(value: str | int) -> int:
    """The venue's millisecond timestamp (a string of digits on the wire)."""
    if isinstance(value, int):
        if value < 0:
            raise BadValue(f"timestamp {value} is negative")
        return value
    if value.isascii() and value.isdigit():
        return int(value)
    raise BadValue(f"timestamp {value!r} is not integer milliseconds")


def _parse_fixed(text: str, what: str, decimals: int) -> int:
    """Strict "digits[.digits]" parsing into units of 10**-decimals, with a reason on failure."""
    whole, dot, frac = text.partition(".")
    if not (text.isascii() and whole.isdigit() and (not dot or frac.isdigit())):
        if text.startswith("-"):
            raise BadValue(f"negative {what} {text}")
        raise BadValue(f"{what} {text!r} is not a decimal number")
    significant = frac.rstrip("0")
    if len(significant) > decimals:
        grid = "0." + "0" * (decimals - 1) + "1"
        if what == "size":
            raise BadValue(f"size {text} has more than {decimals} decimals")
        raise BadValue(f"{what} {text} is off the tick grid {grid}")
    return int(whole) * 10**decimals + int(significant.ljust(decimals, "0") or "0")


# units -> Decimal, read directly by the feature code.
PRICE_DECIMALS_BY_UNITS: dict[int, Decimal] = {}
MID_SCALE: Final = 1_000_000  # mids in micro-units (a mid has at most 5 decimals: half a 0.0001 tick)
MID_UNITS: dict[Decimal, int] = {}  # mid -> micro-units


def mid_units(mid: Decimal) -> int:
    """A mid as an integer of micro-units (histories and volatility windows keep mids as int32)."""
    units = MID_UNITS.get(mid)
    if units is None:
        units = int(mid * MID_SCALE)
        _remember(MID_UNITS, mid, units)
    return units


HALF_PRICE_DECIMALS: dict[int, Decimal] = {}
SIZE_DECIMALS_BY_UNITS: dict[int, Decimal] = {}


def price_decimal(units: int) -> Decimal:
    """The Decimal of a price (or price difference) in units, e.g. 4500 -> Decimal("0.45")."""
    value = PRICE_DECIMALS_BY_UNITS.get(units)
    if value is None:
        value = _plain(Decimal(units).scaleb(-PRICE_DECIMALS).normalize())
        _remember(PRICE_DECIMALS_BY_UNITS, units, value)
    return value


def half_price_decimal(half_units: int) -> Decimal:
    """The Decimal of half_units / 2 price units (a mid price)."""
    value = HALF_PRICE_DECIMALS.get(half_units)
    if value is None:
        value = _plain((Decimal(half_units) / 2).scaleb(-PRICE_DECIMALS).normalize())
        _remember(HALF_PRICE_DECIMALS, half_units, value)
    return value


def size_decimal(units: int) -> Decimal:
    """The Decimal of a size in units, with at least the venue's 2 decimals (e.g. Decimal("150.00"))."""
    value = SIZE_DECIMALS_BY_UNITS.get(units)
    if value is None:
        if units % 10_000 == 0:  # whole cents: keep the venue's 2 decimals
            value = Decimal(units // 10_000).scaleb(-2)
        else:
            value = _plain(Decimal(units).scaleb(-SIZE_DECIMALS).normalize())
        _remember(SIZE_DECIMALS_BY_UNITS, units, value)
    return value


def _plain(value: Decimal) -> Decimal:
    """Avoid exponent notation such as 1E+1 after normalize()."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return value.quantize(Decimal(1))
    return value
