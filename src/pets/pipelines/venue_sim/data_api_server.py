"""A local Polymarket Data API: `/trades?user=&takerOnly=&limit=` and `/activity?user=&limit=`, in the
shapes of ../shared/data/polymarket/rest_examples/ (trades.json, more/data_api_trades_response.json).

Rows are Data-API trade objects plus a `taker` flag (true when the wallet took): like the venue, `/trades`
answers only taker fills unless `takerOnly=false`. `/activity` lists the same trades as `type: TRADE`
plus any other activity rows given. `inject(status, count)` answers the next requests with an error
(429 with Retry-After: 0); `requests` lists every path+query served.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pets.pipelines.venue_sim.serving import HttpServer


class DataApiServer(HttpServer):
    def __init__(
        self,
        trades: Iterable[Mapping[str, Any]],
        activity: Iterable[Mapping[str, Any]] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self.trades = [dict(t) for t in trades]
        self.activity = [dict(a) for a in activity]
        self.requests: list[str] = []
        self._errors: list[int] = []
        self._lock = threading.Lock()
        super().__init__(host, self._handler())

    def add_trades(self, trades: Iterable[Mapping[str, Any]]) -> None:
        with self._lock:
            self.trades.extend(dict(t) for t in trades)

    def inject(self, status: int, count: int = 1) -> None:
        with self._lock:
            self._errors.extend([status] * count)

    def answer(self, path: str, query: Mapping[str, list[str]]) -> list[dict[str, Any]] | None:
        user = (query.get("user") or [""])[0].lower()
        limit = int((query.get("limit") or ["100"])[0])
        mine = [t for t in self.trades if t["proxyWallet"].lower() == user]
        if path == "/trades":
            taker_only = (query.get("takerOnly") or ["true"])[0] != "false"
            rows = [t for t in mine if t.get("taker") or not taker_only]
        elif path == "/activity":
            rows = [{**t, "type": "TRADE", "usdcSize": t["size"] * t["price"]} for t in mine]
            rows += [a for a in self.activity if a["proxyWallet"].lower() == user]
        else:
            return None
        rows.sort(key=lambda r: -int(r["timestamp"]))  # newest first, as the venue lists them
        return [{k: v for k, v in r.items() if k != "taker"} for r in rows[:limit]]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with server._lock:
                    server.requests.append(self.path)
                    error = server._errors.pop(0) if server._errors else None
                    rows = server.answer(parts.path, parse_qs(parts.query))
                if error is not None:
                    self._send(error, b'{"error":"too many requests"}')
                elif rows is None:
                    self._send(404, b'{"error":"not found"}')
                else:
                    self._send(200, json.dumps(rows).encode())

        return Handler
