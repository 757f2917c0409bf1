"""A failed universe refresh (bad Gamma page, Kafka or PostgreSQL error) is counted and retried, not fatal."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pets.flows.market_ingest import IngestConfig, IngestStats, _refresh
from pets.pipelines import kafka_io
from pets.pipelines.polymarket.frames import MarketEvent, Origin
from pets.pipelines.polymarket.gamma import GammaClient
from pets.pipelines.polymarket.market_ws import MarketChannel, MarketWsConfig
from pets.pipelines.polymarket.universe import UniversePublisher, discover
from pets.pipelines.timescale import TimescaleWriter
from pets.settings import Settings

CLOSED_MARKET = {
    "id": "1",
    "conditionId": "0x" + "ab" * 32,
    "clobTokenIds": '["11", "12"]',
    "outcomes": '["Yes", "No"]',
    "closed": True,
    "active": False,
}


class _Gamma:
    """A local Gamma /markets endpoint answering `page` at offset 0 and [] after (offset paging)."""

    def __init__(self) -> None:
        self.page: Any = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                offset = int(parse_qs(urlsplit(self.path).query).get("offset", ["0"])[0])
                body = json.dumps(owner.page if offset == 0 else []).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def gamma() -> Iterator[_Gamma]:
    served = _Gamma()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()
    thread.join()


class _NoSink:
    def on_event(self, event: MarketEvent, recv_ns: int, origin: Origin) -> None:
        raise AssertionError("the channel is not running in these tests")

    def on_dead_letter(self, reason: str, payload: bytes, recv_ns: int) -> None:
        raise AssertionError("the channel is not running in these tests")

    def flush(self) -> None:
        pass


def _refresh_once(gamma: _Gamma, publisher: UniversePublisher, stats: IngestStats) -> None:
    channel = MarketChannel(MarketWsConfig("ws://127.0.0.1:9", "http://127.0.0.1:9"), _NoSink())
    asyncio.run(_refresh(GammaClient(gamma.url, backoff_s=0.01), publisher, channel, IngestConfig(), stats))


def test_a_page_item_that_is_not_an_object_is_dead_lettered(gamma: _Gamma) -> None:
    gamma.page = [42, CLOSED_MARKET, ["x"]]
    found = discover(GammaClient(gamma.url))
    assert [m.condition_id for m in found.markets] == [CLOSED_MARKET["conditionId"]]
    assert [d.reason for d in found.dead_letters] == [
        "gamma market item 42 is not a JSON object",
        "gamma market item ['x'] is not a JSON object",
    ]


@pytest.mark.integration
def test_bad_page_kafka_and_database_errors_fail_one_refresh_and_the_next_one_retries(
    gamma: _Gamma, prefixed_settings: Settings, fresh_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    markets, dlq = (f"{prefixed_settings.topic_prefix}{name}" for name in ("md.markets", "dlq.market_data"))
    stats = IngestStats()
    producer = kafka_io.producer(prefixed_settings, max_block_ms=1000)
    writer = TimescaleWriter(fresh_db)  # an empty database: no `markets` table yet
    try:
        publisher = UniversePublisher(producer, markets, dlq, writer)

        gamma.page = {"markets": []}  # a wrong page shape: MarketParseError
        _refresh_once(gamma, publisher, stats)
        assert (stats.refreshes, stats.failed_refreshes) == (0, 1)

        gamma.page = [CLOSED_MARKET]  # the topics do not exist (auto-creation is off): a Kafka error
        _refresh_once(gamma, publisher, stats)
        assert (stats.refreshes, stats.failed_refreshes) == (0, 2)

        # Kafka fine now, but the table is missing: a psycopg error
        kafka_io.ensure_topics(prefixed_settings, ["md.markets", "dlq.market_data"])
        _refresh_once(gamma, publisher, stats)
        assert (stats.refreshes, stats.failed_refreshes) == (0, 3)
        assert "UndefinedTable" in caplog.text and "password" not in caplog.text

        from pets.pipelines.migrations import migrate

        migrate(fresh_db)
        _refresh_once(gamma, publisher, stats)
        assert (stats.refreshes, stats.failed_refreshes, stats.markets) == (1, 3, 1)
    finally:
        writer.close()
        producer.close()
