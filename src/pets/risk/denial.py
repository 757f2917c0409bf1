"""The verdict of a failed check: a machine rule code and a sentence a person can act on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Denial:
    rule: str  # machine code, e.g. "zone", "leverage" (OrderDenied.rule)
    reason: str  # e.g. "zone 4: directional bets prohibited" (OrderDenied.reason)
