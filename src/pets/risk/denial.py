"""The verdict of a failed check: a machine rule code and a sentence a person can act on."""

from __future__ import annotations

from typing import NamedTuple


class Denial(NamedTuple):
    """A tuple (cheap to build on the hot path of an order; always truthy)."""

    rule: str  # machine code, e.g. "zone", "leverage" (OrderDenied.rule)
    reason: str  # e.g. "zone 4: directional bets prohibited" (OrderDenied.reason)
