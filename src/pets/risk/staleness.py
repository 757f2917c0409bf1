"""Stale books: never trade off a book that lost continuity or that moved on since the bot priced.

A quiet market sends nothing for minutes and its book is still right, so age is not measured against
the wall clock: an intent is stale when the book it was priced from (its `source_ts_ms`) is more than
`max_age_ms` older than the newest top of book the risk flow has for that token.
"""

from __future__ import annotations

from pets.risk.denial import Denial
from pets.schemas.market_data import TopOfBook


def check_book(asset_id: str, tob: TopOfBook | None, priced_at_ms: int, max_age_ms: int) -> Denial | None:
    if tob is None:
        return Denial("stale_book", f"no top of book for {asset_id} yet")
    if tob.stale:
        return Denial("stale_book", f"book of {asset_id} is stale (continuity lost, waiting for a resync)")
    age = tob.ts_ms - priced_at_ms
    if age > max_age_ms:
        return Denial(
            "stale_book", f"priced off a book {age} ms older than the current one (max {max_age_ms})"
        )
    return None
