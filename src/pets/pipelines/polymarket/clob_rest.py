"""CLOB REST order-book snapshots: `GET /book?token_id=` and `POST /books` (the resync after any WS gap).

The venue replays nothing after a WebSocket reconnect, so a book is only trustworthy again once a
REST snapshot replaced it. Bodies come back as the venue sends them (bids ascending, asks
descending, prices and sizes as strings); `frames.rest_book_event` turns one into a `book` event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pets.pipelines.polymarket.http import JsonHttpClient, VenueHttpError

# Token ids per POST /books request; the venue serves up to 500, smaller requests fail less often.
BOOKS_PER_REQUEST = 100


@dataclass(frozen=True, slots=True)
class ClobRestClient:
    base_url: str
    timeout_s: float = 10.0
    backoff_s: float = 0.5
    retries: int = 4
    http: JsonHttpClient = field(init=False)

    def __post_init__(self) -> None:
        http = JsonHttpClient(self.base_url, self.timeout_s, self.retries, self.backoff_s)
        object.__setattr__(self, "http", http)

    def book(self, token_id: str) -> dict[str, Any] | None:
        """The book of one token, None when the venue has none (unknown or closed market)."""
        try:
            body: dict[str, Any] = self.http.get("/book", {"token_id": token_id})
        except VenueHttpError as exc:
            if exc.status == 404:
                return None
            raise
        return body

    def books(self, token_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Books of many tokens (tokens without a book are absent from the answer)."""
        ids = list(dict.fromkeys(token_ids))
        result: list[dict[str, Any]] = []
        for start in range(0, len(ids), BOOKS_PER_REQUEST):
            chunk = ids[start : start + BOOKS_PER_REQUEST]
            body = self.http.post("/books", [{"token_id": token_id} for token_id in chunk])
            if not isinstance(body, list):
                url = f"{self.base_url}/books"
                raise VenueHttpError(url, 200, f"expected a JSON array, got {body!r:.200}")
            result.extend(body)
        return result
