"""What the venue would reject: tick grid, minimum size, amount precision, post-only rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from pets.risk.denial import Denial
from pets.venue import precision as vp

MARKETABLE_TYPES = frozenset({"FOK", "FAK"})


def check_tick(price: Decimal, tick: Decimal) -> Denial | None:
    if tick not in vp.PRECISIONS:
        return Denial("tick", f"unknown tick size {tick}")
    if not vp.on_tick_grid(price, tick):
        return Denial("tick", f"price {price} is not on the {tick} tick grid within (0, 1)")
    return None


def check_min_size(
    size: Decimal, price: Decimal, order_type: str, min_order_size: Decimal, min_marketable_usdc: Decimal
) -> Denial | None:
    """Resting orders need the market's orderMinSize shares; marketable (FOK/FAK) ones $1 notional."""
    if order_type in MARKETABLE_TYPES:
        if size * price < min_marketable_usdc:
            return Denial(
                "min_size",
                f"{order_type} notional {size * price} below the marketable minimum {min_marketable_usdc}",
            )
    elif size < min_order_size:
        return Denial("min_size", f"size {size} below the market minimum {min_order_size} shares")
    return None


def check_precision(side: str, price: Decimal, size: Decimal, tick: Decimal) -> Denial | None:
    """Size on the 2-decimal grid and maker/taker amounts within the tick's amount decimals."""
    key = (side, price, size, tick)
    if key in _PRECISE:
        return None
    try:
        vp.limit_order_amounts(side, price, size, tick)  # type: ignore[arg-type]
    except ValueError as exc:
        return Denial("precision", str(exc))
    if len(_PRECISE) < _PRECISE_MAX:
        _PRECISE.add(key)
    return None


# (side, price, size, tick) that passed check_precision: bots repeat the same quotes all day, and the
# check depends on the values only, so a pass is remembered (bounded; a full set just stops growing)
_PRECISE: set[tuple[str, Decimal, Decimal, Decimal]] = set()
_PRECISE_MAX: Final = 100_000


def check_post_only(strategy_type: str, post_only: bool, order_type: str) -> Denial | None:
    """Market-making orders must be post-only (a maker that crosses pays taker fees); the venue
    accepts post-only only on GTC/GTD."""
    if strategy_type == "market_making" and not post_only:
        return Denial("post_only", "market-making orders must be post-only")
    if post_only and order_type not in ("GTC", "GTD"):
        return Denial("post_only", f"post-only is only allowed on GTC/GTD orders, not {order_type}")
    return None
