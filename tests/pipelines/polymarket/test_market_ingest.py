"""The ingestion service end to end: local Gamma + local CLOB -> md.markets, markets table, md.book."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import TopicPartition

from pets.flows.market_ingest import IngestConfig, IngestStats, run
from pets.pipelines import kafka_io
from pets.pipelines.migrations import migrate
from pets.pipelines.polymarket.kafka_sink import ORIGIN_HEADER
from pets.pipelines.venue_sim.clob_server import serve_clob
from pets.pipelines.venue_sim.gamma_server import load_markets, serve_gamma
from pets.schemas.codec import decode
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo
from pets.settings import Settings, VenueEndpoints

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]


def _universe(shared_data: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """A real Gamma money-line market re-pointed at the recorded tokens, closed markets, a broken open row."""
    live = json.loads(
        (shared_data / "polymarket/rest_examples/more/gamma_market_sports_market_money_line.json").read_text()
    )
    live.update(
        id="900001",
        conditionId="0x" + "ab" * 32,
        slug=meta["slug"],
        clobTokenIds=json.dumps(meta["asset_ids"]),
        closed=False,
        active=True,
        acceptingOrders=True,
    )
    closed = [
        m
        for m in load_markets(shared_data / "polymarket/gamma/markets_raw_2024.jsonl.gz")[:200]
        if m["closed"]
    ][:3]
    broken = {
        **closed[0],
        "id": "900002",
        "conditionId": "0x" + "cd" * 32,
        "clobTokenIds": "[oops",
        "closed": False,
    }
    return [live, *closed, broken]


def _consume(
    settings: Settings, topic: str, until: Any, timeout_s: float = 20, settle_s: float = 0.5
) -> list[Any]:
    """Messages of every partition until `until(messages)`, then `settle_s` more (to see extra ones)."""
    consumer = kafka_io.consumer(settings)
    messages: list[Any] = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()])
        deadline = time.monotonic() + timeout_s
        while not until(messages) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                messages.extend(batch)
        settled = time.monotonic() + settle_s
        while time.monotonic() < settled:
            for batch in consumer.poll(timeout_ms=100).values():
                messages.extend(batch)
    finally:
        consumer.close()
    return messages


def test_ingest_publishes_the_universe_and_streams_the_open_markets_books(
    shared_data: Path,
    recording: tuple[Path, dict[str, Any]],
    settings: Settings,
    kafka_bootstrap: str,
    fresh_db: str,
    topic_prefix: str,
) -> None:
    path, meta = recording
    universe = _universe(shared_data, meta)
    migrate(fresh_db)
    with serve_gamma(universe) as gamma, serve_clob([path]) as clob:
        local = dataclasses.replace(
            settings,
            kafka_bootstrap=kafka_bootstrap,
            postgres_dsn=fresh_db,
            topic_prefix=topic_prefix,
            venue=VenueEndpoints(clob_url=clob.rest_url, ws_market_url=clob.ws_url, gamma_url=gamma.url),
        )
        kafka_io.ensure_topics(local, ["md.book", "md.markets", "dlq.market_data"])  # before we read them
        stop = threading.Event()
        result: list[IngestStats] = []
        service = threading.Thread(
            target=lambda: result.append(run(local, IngestConfig(refresh_interval_s=0.3), stop=stop))
        )
        service.start()
        try:
            book = _consume(
                local,
                f"{topic_prefix}md.book",
                lambda got: clob.tape_done.is_set() and len(got) >= len(clob.served),
            )
            gamma.update_market("900001", closed=True, acceptingOrders=False)  # the game ended
            deadline = time.monotonic() + 10
            while clob.subscriptions() and time.monotonic() < deadline:  # the next refresh unsubscribes
                time.sleep(0.05)
            unsubscribed = not clob.subscriptions()
        finally:
            stop.set()
            service.join(timeout=30)
        served = list(clob.served)
    assert not service.is_alive() and result
    stats = result[0]
    assert unsubscribed and stats.refreshes >= 2 and stats.tokens == 0 and stats.failed_refreshes == 0

    per_key: dict[str, list[bytes]] = defaultdict(list)
    for message in book:
        assert dict(message.headers)[ORIGIN_HEADER] == b"ws"
        per_key[message.key.decode()].append(message.value)
    expected: dict[str, list[bytes]] = defaultdict(list)
    for frame in served:
        expected[json.loads(frame.payload)["market"]].append(frame.payload)  # md.book is keyed by market
    assert per_key == expected

    markets = _consume(local, f"{topic_prefix}md.markets", lambda got: len(got) >= 2)
    infos = [decode(MarketInfo, m.value) for m in markets]
    assert [i.condition_id for i in infos] == [universe[0]["conditionId"]] * 2  # only the open market
    opened, closed = infos
    assert opened.token_ids == tuple(meta["asset_ids"]) and opened.accepting_orders and not opened.closed
    assert closed.closed and not closed.accepting_orders  # published again because it changed
    letters = [decode(DeadLetter, m.value) for m in _consume(local, f"{topic_prefix}dlq.market_data", bool)]
    assert len(letters) == 1  # reported once, not at every refresh
    assert letters[0].reason.startswith("gamma market 900002: clobTokenIds is not a JSON-encoded list")
    assert json.loads(letters[0].raw_bytes())["id"] == "900002"
    with psycopg.connect(fresh_db) as conn:
        rows = conn.execute("SELECT condition_id, token_ids, closed FROM markets").fetchall()
    assert rows == [(closed.condition_id, list(closed.token_ids), True)]
