"""Duplicate client order ids: a replayed or re-delivered intent must never be approved twice.

Ids are remembered for a window of venue time (not forever: the set lives in the recovery snapshot).
An intent older than the window is refused anyway by the stale-book check, which measures it
against the newest book of its token.
"""

from __future__ import annotations

from pets.risk.denial import Denial

WINDOW_NS = 3_600 * 1_000_000_000  # one hour of venue time; far beyond any redelivery after a restart


class RecentIds:
    """Ids seen within the last `window_ns` of the caller's clock, oldest first (picklable)."""

    __slots__ = ("ids", "window_ns")

    def __init__(self, window_ns: int = WINDOW_NS) -> None:
        self.ids: dict[str, int] = {}
        self.window_ns = window_ns

    def __contains__(self, key: object) -> bool:
        return key in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getstate__(self) -> tuple[dict[str, int], int]:
        return self.ids, self.window_ns

    def __setstate__(self, state: tuple[dict[str, int], int]) -> None:
        self.ids, self.window_ns = state

    def add(self, key: str, now_ns: int) -> None:
        self.ids[key] = now_ns
        cutoff = now_ns - self.window_ns
        ids = self.ids
        while ids:
            oldest = next(iter(ids))
            if ids[oldest] > cutoff:
                break
            del ids[oldest]


def check_duplicate(client_order_id: str, decided: RecentIds) -> Denial | None:
    if client_order_id in decided:
        return Denial("duplicate", f"client order id {client_order_id} was already decided")
    return None
