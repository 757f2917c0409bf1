"""Which tokens the market universe knows: the `markets` table (written by market ingestion)."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg


class TableUniverse:
    """`known(token)`: the token is in `markets.token_ids`; a miss re-reads the table at most every
    `refresh_s` (a new market shows up there within one ingestion refresh)."""

    def __init__(
        self, dsn: str, refresh_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.dsn = dsn
        self.refresh_s = refresh_s
        self.clock = clock
        self.tokens: set[str] = set()
        self.read_at: float | None = None

    def known(self, token: str) -> bool:
        if token in self.tokens:
            return True
        now = self.clock()
        if self.read_at is None or now - self.read_at >= self.refresh_s:
            with psycopg.connect(self.dsn) as conn:
                rows = conn.execute("SELECT unnest(token_ids) FROM markets").fetchall()
            self.tokens = {row[0] for row in rows}
            self.read_at = now
        return token in self.tokens
