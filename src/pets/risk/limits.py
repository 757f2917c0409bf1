"""Money limits: bot allocation, the per-bot and per-category caps, position size and leverage.

Each check measures an order at one cost per share, `unit_cost` (price plus the worst-case taker fee
at the market's rate; the price alone for a post-only order), receives the exposure already committed
(positions at cost plus the reservations of open buy orders, on the same measure) and returns the size
that fits: the order's own size when it fits, a smaller size on the
venue's 2-decimal grid when reducing is allowed (never below `min_size`), else a Denial. Legs of a
basket (group_id) are not reducible: a smaller leg would unbalance the basket, so they fit or fail.
"""

from __future__ import annotations

from decimal import Decimal

from pets.risk.denial import Denial
from pets.venue.precision import round_size


def fit(
    size: Decimal, unit_cost: Decimal, room: Decimal, min_size: Decimal, reducible: bool
) -> Decimal | None:
    """The largest size <= `size` with size x unit_cost <= room (not below `min_size`), else None."""
    if size * unit_cost <= room:
        return size
    if not reducible or room <= 0 or unit_cost <= 0:
        return None
    fitted = round_size(room / unit_cost)
    return fitted if fitted >= min_size and fitted > 0 else None


def _within_cap(
    rule: str, subject: str, cap_name: str, size: Decimal, unit_cost: Decimal, exposure: Decimal,
    cap: Decimal, min_size: Decimal, reducible: bool,
) -> Decimal | Denial:  # fmt: skip
    fitted = fit(size, unit_cost, cap - exposure, min_size, reducible)
    if fitted is not None:
        return fitted
    return Denial(
        rule, f"{subject}: exposure {exposure:.2f} + order {size * unit_cost:.2f} exceeds {cap_name}{cap:.2f}"
    )


def check_allocation(
    bot_id: str, size: Decimal, unit_cost: Decimal, exposure: Decimal, budget: Decimal, min_size: Decimal,
    reducible: bool,
) -> Decimal | Denial:  # fmt: skip
    """The bot's own capital (capital_allocation x starting capital) bounds its exposure."""
    return _within_cap(
        "allocation", bot_id, "its allocation ", size, unit_cost, exposure, budget, min_size, reducible
    )


def check_bot_exposure(
    bot_id: str, size: Decimal, unit_cost: Decimal, exposure: Decimal, cap: Decimal, min_size: Decimal,
    reducible: bool,
) -> Decimal | Denial:  # fmt: skip
    """No bot holds more than limits.max_bot_allocation (20%) of capital."""
    return _within_cap(
        "bot_exposure", bot_id, "the per-bot cap ", size, unit_cost, exposure, cap, min_size, reducible
    )


def check_category_exposure(
    category: str, size: Decimal, unit_cost: Decimal, exposure: Decimal, cap: Decimal, min_size: Decimal,
    reducible: bool,
) -> Decimal | Denial:  # fmt: skip
    """No market category holds more than limits.max_category_exposure (60%) of capital."""
    return _within_cap(
        "category_exposure", f"category {category}", "", size, unit_cost, exposure, cap, min_size, reducible
    )


def check_position_size(
    market: str, size: Decimal, unit_cost: Decimal, position_cost: Decimal, min_usdc: Decimal,
    max_usdc: Decimal, min_size: Decimal, reducible: bool, opening: bool,
) -> Decimal | Denial:  # fmt: skip
    """A bot's position in one market stays within [min_position_usdc, max_position_usdc] at cost.

    The minimum applies to an order that opens a position (`opening`): a new position smaller than
    the minimum is not worth its fees. The maximum caps the position including open buy orders.
    """
    if opening and size * unit_cost < min_usdc:
        return Denial(
            "position_size",
            f"market {market}: new position {size * unit_cost:.2f} below the minimum {min_usdc}",
        )
    fitted = fit(size, unit_cost, max_usdc - position_cost, min_size, reducible)
    if fitted is not None:
        return fitted
    return Denial(
        "position_size",
        f"market {market}: position {position_cost:.2f} + order {size * unit_cost:.2f} "
        f"exceeds the maximum {max_usdc}",
    )


def check_leverage(
    size: Decimal, unit_cost: Decimal, available_cash: Decimal, gross_exposure: Decimal, gross_cap: Decimal,
    min_size: Decimal, reducible: bool,
) -> Decimal | Denial:  # fmt: skip
    """No leverage: cash minus open-order reservations pays for the order and its worst-case taker fee,
    and gross exposure stays within max_gross_leverage x capital (1 = no leverage)."""
    gross_room = gross_cap - gross_exposure
    fitted = fit(size, unit_cost, min(available_cash, gross_room), min_size, reducible)
    if fitted is not None:
        return fitted
    if available_cash <= gross_room:
        return Denial(
            "leverage",
            f"order {size * unit_cost:.2f} with fees exceeds the available cash {available_cash:.2f} "
            f"(cash minus open-order reservations)",
        )
    return Denial(
        "leverage",
        f"gross exposure {gross_exposure:.2f} + order {size * unit_cost:.2f} exceeds {gross_cap:.2f}",
    )


def check_inventory(asset_id: str, size: Decimal, held: Decimal) -> Denial | None:
    """A sell must be covered by tokens held and not already offered (the venue has no short sale)."""
    if size > held:
        return Denial("inventory", f"sell {size} of {asset_id} exceeds the {held} held and not yet offered")
    return None
