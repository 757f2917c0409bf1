"""Order-rate limit per bot: sliding windows of one second and one minute (venue time)."""

from __future__ import annotations

from collections import deque

from pets.risk.denial import Denial

SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS


class RateWindow:
    """Timestamps of one bot's recent orders (picklable: it lives in the recovered risk state)."""

    __slots__ = ("minute", "second")

    def __init__(self) -> None:
        self.second: deque[int] = deque()
        self.minute: deque[int] = deque()

    def __getstate__(self) -> tuple[list[int], list[int]]:
        return list(self.second), list(self.minute)

    def __setstate__(self, state: tuple[list[int], list[int]]) -> None:
        self.second, self.minute = deque(state[0]), deque(state[1])

    def record(self, now_ns: int) -> None:
        self.second.append(now_ns)
        self.minute.append(now_ns)

    def take_back(self) -> None:
        """Forget the latest record (a basket leg approved on trial, then denied with its basket)."""
        self.second.pop()
        self.minute.pop()


def check_rate(window: RateWindow, now_ns: int, per_second: int, per_minute: int) -> Denial | None:
    """Deny when the bot already sent `per_second` orders in the last second or `per_minute` in the
    last minute. Forgets timestamps that left the windows.

    A clock that jumps cannot freeze the windows: after a jump forward the old records fall out,
    and records more than a second ahead of `now_ns` (the clock went back: a replay of an earlier
    recording, or an order stamped far in the future) belong to another timeline and are dropped,
    where they would otherwise fill the windows until the clock caught up with them."""
    if window.minute and window.minute[-1] > now_ns + SECOND_NS:  # minute[-1]: the newest record
        window.second.clear()
        window.minute.clear()
    _drop_before(window.second, now_ns - SECOND_NS)
    _drop_before(window.minute, now_ns - MINUTE_NS)
    if len(window.second) >= per_second:
        return Denial("rate_limit", f"{len(window.second)} orders in the last second (max {per_second})")
    if len(window.minute) >= per_minute:
        return Denial("rate_limit", f"{len(window.minute)} orders in the last minute (max {per_minute})")
    return None


def _drop_before(times: deque[int], cutoff_ns: int) -> None:
    while times and times[0] <= cutoff_ns:
        times.popleft()
