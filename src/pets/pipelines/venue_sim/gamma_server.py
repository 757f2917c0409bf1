"""A local Gamma API: `/markets`, `/markets/{id}`, `/markets/keyset`, `/events`, `/events/keyset`.

Serves given raw Gamma market objects (for example the lines of
data/polymarket/gamma/markets_raw_*.jsonl.gz) with the venue's paging (limit/offset, capped limit;
keyset with `after_cursor` / `next_cursor`) and its common filters: closed, active, archived, id,
slug, condition_ids, clob_token_ids (repeated keys or comma lists), end_date_min/max, order +
ascending. Events are the `events[0]` blocks of the markets, each with its `markets`.

    with serve_gamma(markets) as gamma:
        GammaClient(gamma.url).iter_markets(closed=False)

Test hooks: `update_market(id, **fields)` changes the universe; `inject_errors(status, count)`
answers the next requests with an error status (429 to exercise the client's backoff); `requests`
lists every path+query served.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

DEFAULT_LIMIT = 20
MAX_LIMIT = 500
KEYSET_MAX_LIMIT = 100
LIST_FILTERS = {"id": "id", "slug": "slug", "condition_ids": "conditionId"}
BOOL_FILTERS = ("closed", "active", "archived")


class BadRequestError(ValueError):
    """A query the venue would answer with 422; the message names the parameter."""


def load_markets(path: Path) -> list[dict[str, Any]]:
    """Raw Gamma markets from a JSON-lines file (gzip or plain), in file order."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _token_ids(market: dict[str, Any]) -> list[str]:
    value = market.get("clobTokenIds") or []
    return [str(t) for t in (json.loads(value) if isinstance(value, str) else value)]


def build_events(markets: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gamma events (the `events[0]` block of each market) with their markets, first-seen order."""
    events: dict[str, dict[str, Any]] = {}
    for market in markets:
        blocks = market.get("events") or []
        if not blocks or not isinstance(blocks[0], dict) or "id" not in blocks[0]:
            continue
        block = blocks[0]
        event = events.setdefault(str(block["id"]), {**block, "markets": []})
        event["markets"].append({k: v for k, v in market.items() if k != "events"})
    return list(events.values())


class _Query:
    def __init__(self, raw: str) -> None:
        self.values = {k: [p for v in vs for p in v.split(",") if p] for k, vs in parse_qs(raw).items()}

    def first(self, name: str) -> str | None:
        values = self.values.get(name)
        return values[0] if values else None

    def integer(self, name: str, default: int) -> int:
        value = self.first(name)
        if value is None:
            return default
        if not value.isdigit():
            raise BadRequestError(f"{name}={value!r}: expected a non-negative integer")
        return int(value)

    def boolean(self, name: str) -> bool | None:
        value = self.first(name)
        if value is None:
            return None
        if value.lower() not in ("true", "false"):
            raise BadRequestError(f"{name}={value!r}: expected true or false")
        return value.lower() == "true"


def _matches(item: dict[str, Any], query: _Query) -> bool:
    for name in BOOL_FILTERS:
        wanted = query.boolean(name)
        if wanted is not None and bool(item.get(name) or False) != wanted:
            return False
    for param, key in LIST_FILTERS.items():
        wanted_values = query.values.get(param)
        if wanted_values and str(item.get(key)) not in wanted_values:
            return False
    tokens = query.values.get("clob_token_ids")
    if tokens and not set(tokens) & set(_token_ids(item)):
        return False
    end = str(item.get("endDate") or "")
    low, high = query.first("end_date_min"), query.first("end_date_max")
    return not ((low and (not end or end < low)) or (high and (not end or end > high)))


PAGING_PARAMS = frozenset({"limit", "offset", "after_cursor"})


def _select(items: Sequence[dict[str, Any]], query: _Query) -> list[dict[str, Any]]:
    selected = [item for item in items if _matches(item, query)]
    order = query.first("order")
    if order:
        descending = query.boolean("ascending") is False
        selected.sort(key=lambda item: (item.get(order) is None, item.get(order) or 0), reverse=descending)
    return selected


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _cursor_offset(cursor: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "offset" or not value.isdigit():
            raise ValueError(cursor)
        return int(value)
    except ValueError:
        raise BadRequestError(f"after_cursor={cursor!r}: not a cursor this server issued") from None


class GammaServer:
    """The Gamma API over given raw markets, on 127.0.0.1 (an ephemeral port unless given)."""

    def __init__(self, markets: Iterable[dict[str, Any]], *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.markets = list(markets)
        self.events = build_events(self.markets)
        self.requests: list[str] = []
        self._errors: list[int] = []
        self._selections: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="gamma-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> GammaServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def update_market(self, market_id: str, **fields: Any) -> None:
        """Change one served market (e.g. closed=True), as the venue's universe changes."""
        with self._lock:
            for market in self.markets:
                if str(market.get("id")) == market_id:
                    market.update(fields)
            self.events = build_events(self.markets)
            self._selections.clear()

    def inject_errors(self, status: int, count: int = 1) -> None:
        """Answer the next `count` requests with `status` (e.g. 429 to exercise client backoff)."""
        with self._lock:
            self._errors.extend([status] * count)

    def answer(self, path: str, raw_query: str) -> tuple[int, Any]:
        """(status, JSON body) for one GET; the HTTP handler only frames it."""
        with self._lock:
            self.requests.append(f"{path}?{raw_query}" if raw_query else path)
            if self._errors:
                status = self._errors.pop(0)
                return status, {"error": f"injected HTTP {status}"}
        query = _Query(raw_query)
        parts = [p for p in path.split("/") if p]
        try:
            if parts in (["markets"], ["events"]):
                return 200, self._offset_page(self._collection(parts[0]), query)
            if len(parts) == 2 and parts[0] in ("markets", "events") and parts[1] == "keyset":
                return 200, self._keyset_page(parts[0], query)
            if len(parts) == 2 and parts[0] in ("markets", "events"):
                found = [item for item in self._collection(parts[0]) if str(item.get("id")) == parts[1]]
                return (200, found[0]) if found else (404, {"error": f"{parts[0][:-1]} {parts[1]} not found"})
        except BadRequestError as exc:
            return 422, {"error": str(exc)}
        return 404, {"error": f"no route {path}"}

    def _collection(self, name: str) -> list[dict[str, Any]]:
        return self.markets if name == "markets" else self.events

    def _selected(self, items: list[dict[str, Any]], query: _Query) -> list[dict[str, Any]]:
        """The filtered, ordered rows of one query, kept across its pages (the data never changes)."""
        filters = sorted((k, tuple(v)) for k, v in query.values.items() if k not in PAGING_PARAMS)
        key = ("markets" if items is self.markets else "events", repr(filters))
        with self._lock:
            cached = self._selections.get(key)
        if cached is None:
            cached = _select(items, query)
            with self._lock:
                self._selections[key] = cached
        return cached

    def _offset_page(self, items: list[dict[str, Any]], query: _Query) -> list[dict[str, Any]]:
        limit = min(query.integer("limit", DEFAULT_LIMIT), MAX_LIMIT)
        offset = query.integer("offset", 0)
        return self._selected(items, query)[offset : offset + limit]

    def _keyset_page(self, name: str, query: _Query) -> dict[str, Any]:
        limit = min(query.integer("limit", DEFAULT_LIMIT), KEYSET_MAX_LIMIT)
        cursor = query.first("after_cursor")
        offset = _cursor_offset(cursor) if cursor else 0
        selected = self._selected(self._collection(name), query)
        body: dict[str, Any] = {name: selected[offset : offset + limit]}
        if offset + limit < len(selected):
            body["next_cursor"] = _cursor(offset + limit)
        return body

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                status, body = server.answer(parts.path, parts.query)
                payload = msgspec.json.encode(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `requests`
                return

        return Handler


@contextmanager
def serve_gamma(markets: Iterable[dict[str, Any]], *, port: int = 0) -> Iterator[GammaServer]:
    """A running GammaServer for the block; stopped afterwards."""
    server = GammaServer(markets, port=port).start()
    try:
        yield server
    finally:
        server.stop()
