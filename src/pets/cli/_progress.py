"""Progress of long commands (replays, recordings, backtests) on stderr: a bar redrawn in place on a
terminal (at most 10 times a second), a plain line every `every_s` seconds otherwise (logs, CI), nothing
there for a command done before the first line is due. Off when the output is for machines (`--json`)
and stderr is not a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TypeVar

T = TypeVar("T")
BAR = 30
TTY_EVERY_S = 0.1


class Progress:
    def __init__(
        self,
        label: str,
        total: int | None = None,
        unit: str = "items",
        *,
        enabled: bool = True,
        every_s: float = 10.0,
        stream: IO[str] | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.enabled = enabled or self.tty
        self.every_s = TTY_EVERY_S if self.tty else every_s
        self.clock = clock
        self.count = 0
        self.started = self.clock()
        self.next_at = self.started if self.tty else self.started + self.every_s  # a bar shows at once
        self.drawn = False

    def update(self, count: int, total: int | None = None) -> None:
        self.count = count
        if total is not None:
            self.total = total
        if self.enabled and self.clock() >= self.next_at:
            self._draw()

    def advance(self, n: int = 1) -> None:
        self.update(self.count + n)

    def close(self) -> None:
        """The final state, when anything was shown (the bar's line is ended)."""
        if self.drawn:
            self._draw()
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()

    def line(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = f"{self.count / elapsed:,.0f} {self.unit}/s"
        if self.total:
            share = min(self.count / self.total, 1.0)
            done = f"{self.count:,}/{self.total:,} {self.unit} ({share:.0%})"
            if self.tty:
                filled = int(share * BAR)
                return f"{self.label} [{'#' * filled}{'.' * (BAR - filled)}] {done}, {rate}"
            return f"{self.label}: {done}, {rate}, {elapsed:.0f} s"
        return f"{self.label}: {self.count:,} {self.unit}, {rate}, {elapsed:.0f} s"

    def _draw(self) -> None:
        self.drawn = True
        self.next_at = self.clock() + self.every_s
        self.stream.write(f"\r{self.line()}\x1b[K" if self.tty else f"{self.line()}\n")
        self.stream.flush()


def tracked(items: Iterable[T], progress: Progress) -> Iterator[T]:
    """The items, counted as they pass; the progress closes when they run out."""
    try:
        for item in items:
            progress.advance()
            yield item
    finally:
        progress.close()
