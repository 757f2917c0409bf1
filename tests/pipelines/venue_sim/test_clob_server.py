"""The local CLOB speaks the venue's market-channel protocol and REST book endpoints over real recordings.

Driven with the plain `websockets` client and urllib, not with our client, so the server is checked
against the protocol rather than against our own expectations of it.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pets.pipelines.polymarket.recording import read_recording
from pets.pipelines.venue_sim.clob_server import ClobServer, load_tape, serve_clob

pytestmark = pytest.mark.shared_data

SMALL = "20250624_mlb-pit-mil-2025-06-24"  # 158 frames, two tokens, ran to settlement


def _recording(shared_data: Path, name: str = SMALL) -> tuple[Path, dict[str, Any]]:
    path = shared_data / "polymarket/l2" / f"{name}.jsonl.gz"
    return path, json.loads(path.with_name(f"{name}.meta.json").read_text())


def _price(meta_value: float | None) -> Decimal | None:
    return None if meta_value is None else Decimal(str(meta_value))


def _post_books(server: ClobServer, tokens: list[str]) -> list[dict[str, Any]]:
    body = json.dumps([{"token_id": t} for t in tokens]).encode()
    request = urllib.request.Request(f"{server.rest_url}/books", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        result: list[dict[str, Any]] = json.loads(response.read())
    return result


async def _collect(server: ClobServer, subscription: dict[str, Any]) -> list[str]:
    async with connect(server.ws_url) as ws:
        await ws.send(json.dumps(subscription))
        return await _drain(ws, server.tape_done.is_set)


async def _drain(ws: Any, done: Callable[[], bool], quiet_s: float = 0.3) -> list[str]:
    """Messages until `done()` and then none arrives for `quiet_s`."""
    messages: list[str] = []
    while True:
        try:
            messages.append(str(await asyncio.wait_for(ws.recv(), quiet_s)))
        except TimeoutError:
            if done():
                return messages


def _events(messages: list[str]) -> list[bytes]:
    out: list[bytes] = []
    for message in messages:
        parsed = json.loads(message)
        for event in parsed if isinstance(parsed, list) else [parsed]:
            out.append(json.dumps(event, separators=(",", ":")).encode())
    return out


def test_serves_every_recorded_frame_and_the_final_books_match_the_recording(shared_data: Path) -> None:
    path, meta = _recording(shared_data)
    lines = [f.payload for f in read_recording(path)]
    with serve_clob([path]) as server:
        subscription = {"type": "market", "assets_ids": meta["asset_ids"], "custom_feature_enabled": True}
        messages = asyncio.run(_collect(server, subscription))
        books = _post_books(server, meta["asset_ids"])
        with urllib.request.urlopen(f"{server.rest_url}/book?token_id={meta['asset_ids'][0]}") as response:
            single = json.loads(response.read())
    assert any(m.startswith("[") for m in messages)  # mirrored frames of one timestamp come as one array
    assert [json.loads(e) for e in _events(messages)] == [json.loads(line) for line in lines]
    assert [s.payload for s in server.served] == lines  # byte-exact
    assert single == books[0]
    for book in books:
        final = meta["final_top_of_book"][book["asset_id"]]
        bids = [Decimal(level["price"]) for level in book["bids"]]
        asks = [Decimal(level["price"]) for level in book["asks"]]
        assert bids == sorted(bids) and asks == sorted(asks, reverse=True)  # REST shape: best last
        assert (bids[-1] if bids else None) == _price(final["best_bid"])
        assert (asks[-1] if asks else None) == _price(final["best_ask"])


def test_subscribe_protocol_ping_and_unknown_book(shared_data: Path) -> None:
    path, meta = _recording(shared_data)
    yes, no = meta["asset_ids"]

    async def session(server: ClobServer) -> list[str]:
        async with connect(server.ws_url) as ws:
            await ws.send(json.dumps({"type": "market", "assets_ids": [yes]}))
            got = [str(await ws.recv())]
            await ws.send("PING")
            await ws.send(json.dumps({"operation": "subscribe", "assets_ids": [yes]}))
            await ws.send(json.dumps({"operation": "subscribe", "assets_ids": [no]}))
            return got + await _drain(ws, server.tape_done.is_set)

    with serve_clob([path]) as server:
        got = asyncio.run(session(server))
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{server.rest_url}/book?token_id=123")
    assert missing.value.code == 404
    assert "PONG" in got and "NO NEW ASSETS" in got
    events = [json.loads(e) for e in _events([m for m in got if m.startswith(("{", "["))])]
    first_no = next(i for i, e in enumerate(events) if e["asset_id"] == no)
    assert all(e["asset_id"] == yes for e in events[:first_no])  # only what was subscribed
    assert events[first_no]["event_type"] == "book"  # a new subscription starts with a snapshot
    assert server.pings == 1


def test_a_subscription_must_come_first(shared_data: Path) -> None:
    path, _ = _recording(shared_data)

    async def session(server: ClobServer) -> int | None:
        async with connect(server.ws_url) as ws:
            await ws.send(json.dumps({"operation": "subscribe", "assets_ids": ["1"]}))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code if closed.value.rcvd else None

    with serve_clob([path]) as server:
        assert asyncio.run(session(server)) == 1008


def test_stall_keeps_the_socket_open_and_silent_while_the_books_move(shared_data: Path) -> None:
    path, meta = _recording(shared_data)
    tape = load_tape([path])

    async def session(server: ClobServer) -> tuple[int, str]:
        async with connect(server.ws_url) as ws:
            await ws.send(json.dumps({"type": "market", "assets_ids": meta["asset_ids"]}))
            received = len(_events(await _drain(ws, lambda: server.played > len(server.served) >= 30)))
            await ws.send("PING")
            return received, str(await asyncio.wait_for(ws.recv(), 2))

    with serve_clob(tape) as server:
        server.stall_at(30, missed=20)
        received, answer = asyncio.run(session(server))
        assert received == len(server.served) >= 30
        assert server.played == received + 20  # the missed frames moved the venue's books, unseen
        assert answer == "PONG"  # the socket is alive: only the subscription is silent
