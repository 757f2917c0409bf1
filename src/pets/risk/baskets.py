"""Arbitrage baskets pass risk whole: all legs approved together, or all denied.

A basket bot sends its legs together, each with the basket's `group_id` and `group_size`. The engine
holds the legs until the last one arrives, then decides them in arrival order, each leg checked with
the reservations of the legs before it; one denied leg denies them all and frees what the others
reserved. A lone approved leg would be a directional position the bot then has to unwind.

Legs that do not all arrive within the stale-book age (venue time, from the first leg) are denied as
incomplete: by then they were priced off books older than risk accepts for any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pets.risk.denial import Denial
from pets.risk.duplicates import RecentIds
from pets.schemas.orders import OrderIntent


@dataclass(slots=True)
class PendingBasket:
    """The legs of one basket received so far (picklable: it lives in the recovered risk state)."""

    group_id: str
    size: int
    since_ns: int  # engine clock when the first leg arrived
    legs: list[OrderIntent] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.legs) >= self.size

    def expired(self, now_ns: int, max_wait_ms: int) -> bool:
        return now_ns - self.since_ns > max_wait_ms * 1_000_000


def check_waiting(client_order_id: str, basket: PendingBasket | None) -> Denial | None:
    """A re-delivered leg of a basket still waiting for its other legs."""
    if basket is not None and any(leg.client_order_id == client_order_id for leg in basket.legs):
        return Denial(
            "duplicate", f"client order id {client_order_id} is already waiting in basket {basket.group_id}"
        )
    return None


def check_leg(intent: OrderIntent, basket: PendingBasket | None, decided_groups: RecentIds) -> Denial | None:
    """Why a leg cannot join its basket: the basket was already decided (the leg came too late), or
    the leg disagrees with the legs before it on the bot or the number of legs."""
    leg, group = intent.client_order_id, intent.group_id
    if basket is None:
        if group in decided_groups:
            return Denial("basket", f"basket {group}: leg {leg} arrived after the basket was decided")
        return None
    first = basket.legs[0]
    if intent.bot_id != first.bot_id or intent.group_size != basket.size:
        return Denial(
            "basket",
            f"basket {group}: leg {leg} ({intent.bot_id}, {intent.group_size} legs) does not match "
            f"leg {first.client_order_id} ({first.bot_id}, {basket.size} legs)",
        )
    return None


def leg_denied(group_id: str, leg: str, denial: Denial) -> Denial:
    """The denial every leg of a basket gets when `leg` failed a check: that check's rule and reason."""
    return Denial(denial.rule, f"basket {group_id}: leg {leg} denied: {denial.reason}")


def incomplete(basket: PendingBasket, max_wait_ms: int) -> Denial:
    return Denial(
        "basket_incomplete",
        f"basket {basket.group_id}: {len(basket.legs)} of {basket.size} legs arrived within {max_wait_ms} ms",
    )
