"""Zone framework: which strategy types may BUY a token at a given price.

A zone applies to the price of the token being bought (buying NO at 0.85 is zone 5). Zones are the
half-open intervals [lower, upper) of zone_framework.yaml, the last one closed at 1. Sells only close
inventory, so they are never zone-checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pets.risk.denial import Denial
from pets.schemas.config import Zone


def zone_for(price: Decimal, zones: Sequence[Zone]) -> Zone | None:
    """The zone holding `price`, None outside [0, 1]."""
    for zone in zones:
        if zone.lower <= price < zone.upper:
            return zone
    last = zones[-1] if zones else None
    return last if last is not None and price == last.upper else None


def check_zone(
    price: Decimal, strategy_type: str, probability: Decimal | None, zones: Sequence[Zone]
) -> Denial | None:
    """Deny a buy at `price` that its zone does not allow for `strategy_type`."""
    zone = zone_for(price, zones)
    if zone is None:
        return Denial("zone", f"price {price} is in no zone")
    if strategy_type not in zone.allowed_strategy_types:
        return Denial("zone", f"zone {zone.zone}: {strategy_type} bets prohibited")
    floor = zone.directional_min_probability
    if strategy_type == "directional" and floor is not None and (probability is None or probability <= floor):
        got = "none given" if probability is None else f"got {probability}"
        return Denial("zone", f"zone {zone.zone}: directional bets need probability > {floor} ({got})")
    return None
