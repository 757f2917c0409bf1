"""Helpers of the batch-layer tests: read a topic, a local Data API over recorded trades."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

MIDTERMS_END_DAYS = ("2022-11-08", "2022-11-15")  # end dates of the 39 midterm markets in Gamma
MakeResources = Callable[..., dict[str, Any]]


def read_topic(bootstrap: str, topic: str, timeout_s: float = 15.0) -> list[tuple[bytes | None, bytes]]:
    """Every (key, value) on a topic, from the beginning to its current end."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        out: list[tuple[bytes | None, bytes]] = []
        deadline = datetime.now().timestamp() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if datetime.now().timestamp() > deadline:
                raise TimeoutError(f"{topic}: read {len(out)} messages before the timeout")
            for records in consumer.poll(timeout_ms=500).values():
                out.extend((r.key, r.value) for r in records)
        return out
    finally:
        consumer.close()


# --- a local Data API ---------------------------------------------------------------------------


def export_rows_as_trades(path: Path) -> list[dict[str, Any]]:
    """A flat Data-API export (jamesbayly CSV) back in the /trades object shape."""
    trades = []
    with path.open() as f:
        for r in csv.DictReader(f):
            trades.append(
                {
                    "proxyWallet": r["user_id"],
                    "side": r["side"],
                    "asset": "",
                    "conditionId": r["market_id"],
                    "size": Decimal(r["amount"]),
                    "price": Decimal(r["price"]),
                    "timestamp": int(
                        datetime.fromisoformat(r["trade_date"].replace("Z", "+00:00")).timestamp()
                    ),
                    "outcome": r["outcome"],
                    "name": r["user_name"],
                    "transactionHash": r["transaction_hash"],
                }
            )
    return trades


class DataApiServer:
    """`GET /trades` over given trade objects: market (comma list of condition ids) and user filters,
    limit (capped at 500) / offset paging, newest first - the Data API's protocol."""

    MAX_LIMIT = 500

    def __init__(self, trades: list[dict[str, Any]]) -> None:
        self.trades = sorted(trades, key=lambda t: -int(t["timestamp"]))
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                server.requests.append(self.path)
                status, body = server.answer(parts.path, parse_qs(parts.query))
                payload = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path != "/trades":
            return 404, {"error": f"no route {path}"}
        markets = {m for v in query.get("market", []) for m in v.split(",") if m}
        users = {u.lower() for u in query.get("user", [])}
        limit = min(int(query.get("limit", ["100"])[0]), self.MAX_LIMIT)
        offset = int(query.get("offset", ["0"])[0])
        selected = [
            t
            for t in self.trades
            if (not markets or t["conditionId"] in markets)
            and (not users or t["proxyWallet"].lower() in users)
        ]
        page = selected[offset : offset + limit]
        # JSON numbers as the API sends them (Decimals written as their exact text).
        return 200, [{k: float(v) if isinstance(v, Decimal) else v for k, v in t.items()} for t in page]

    def __enter__(self) -> DataApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
