"""Zone framework: which named strategies may BUY a token at a given price.

A zone applies to the price of the token being bought (buying NO at 0.85 is zone 5). Zones are the
half-open intervals [lower, upper) of zone_framework.yaml, the last one closed at 1. Sells only close
inventory, so they are never zone-checked. A bot names its zone strategies in its config
(`zone_strategies`); an order is judged as the bot's zone strategy of the order's strategy_type.
A zone allows its listed strategies, the exceptions the file states (with their reasons; some only
for the legs of a complete-set basket), and, where `directional_min_probability` is set, any
directional strategy whose estimated win probability is above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pets.risk.denial import Denial
from pets.schemas.config import Zone, ZoneFramework


def zone_for(price: Decimal, zones: Sequence[Zone]) -> Zone | None:
    """The zone holding `price`, None outside [0, 1]."""
    for zone in zones:
        if zone.lower <= price < zone.upper:
            return zone
    last = zones[-1] if zones else None
    return last if last is not None and price == last.upper else None


def excepted(framework: ZoneFramework, zone: int, strategy: str, basket: bool) -> bool:
    """An exception of zone_framework.yaml lets `strategy` buy in `zone`."""
    return any(
        e.strategy == strategy and zone in e.zones and (basket or not e.baskets_only)
        for e in framework.exceptions
    )


def check_zone(
    price: Decimal,
    strategy: str,
    probability: Decimal | None,
    framework: ZoneFramework,
    *,
    basket: bool = False,
) -> Denial | None:
    """Deny a buy at `price` that its zone does not allow for the zone strategy `strategy`
    (`basket`: the order is a leg of a complete-set basket)."""
    zone = zone_for(price, framework.zones)
    if zone is None:
        return Denial("zone", f"price {price} is in no zone")
    if strategy in zone.allowed_strategies or excepted(framework, zone.zone, strategy, basket):
        return None
    spec = framework.strategy(strategy)
    floor = zone.directional_min_probability
    if spec is None or not spec.directional or floor is None or zone.directional_prohibited:
        return Denial("zone", f"zone {zone.zone}: {strategy} prohibited")
    if probability is None or probability <= floor:
        got = "none given" if probability is None else f"got {probability}"
        return Denial("zone", f"zone {zone.zone}: {strategy} needs probability > {floor} ({got})")
    return None
