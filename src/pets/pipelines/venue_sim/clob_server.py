"""A local CLOB: the market-channel WebSocket and REST `/book`, `POST /books`, over recorded frames.

The "tape" is the frames of one or more recordings (data/polymarket/l2/*.jsonl.gz or our own
recordings), merged by time since each file's first frame and played once, from the first
subscription on, at `speed` times real time (None = as fast as the clients read). Every frame
updates the venue's books, whoever is subscribed; a connection receives the frames of the assets
it subscribed, consecutive frames of one timestamp batched into one JSON array as the venue does.

WebSocket protocol (VENUE.md): first message `{"type":"market","assets_ids":[...]}`, then
`{"operation":"subscribe"|"unsubscribe","assets_ids":[...]}`; a subscription is answered with a
`book` snapshot of each newly subscribed asset the venue has a book for (`NO NEW ASSETS` when
nothing was new); text `PING` is answered `PONG`. REST answers the current books in the shape of
rest_examples/book.json (bids ascending, asks descending).

Test hooks, deterministic by tape position: `disconnect_at(n, missed=k)` drops every connection
after the n-th frame (TCP abort), `stall_at(n, missed=k)` keeps them open but silent (PINGs still
answered); either way the next k frames change the books unseen, and the tape then waits for a
new subscription. `force_disconnect()` / `stall()` do the same at once; `inject(message)` sends
raw text. Logs: `served` (every event delivered, per connection), `rest_served`, `pings`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pets.pipelines.polymarket.frames import NO_NEW_ASSETS, PONG, BadFrameError, parse_event
from pets.pipelines.polymarket.recording import RecordedFrame, read_recording
from pets.pipelines.venue_sim.serving import LoopbackServer

NO_BOOK = {"error": "No orderbook exists for the requested token id"}


class TapeFrame(msgspec.Struct, frozen=True):
    offset_ms: int  # since the first frame of its recording
    ts_ms: int
    payload: bytes
    asset_ids: tuple[str, ...]


def tape_of(frames: Iterable[RecordedFrame]) -> list[TapeFrame]:
    """One recording's venue frames as a tape (offsets from its first frame); ours are left out."""
    tape: list[TapeFrame] = []
    first: int | None = None
    last = 0
    for recorded in frames:
        try:
            event = parse_event(recorded.payload)
        except BadFrameError:
            continue  # a venue would never send it; the tape only carries events
        if event.event_type == "continuity" or recorded.origin != "ws":
            continue  # ours, not the venue's
        last = _timestamp_ms(recorded.payload, recorded.recv_ns, last)
        first = last if first is None else first
        tape.append(TapeFrame(last - first, last, recorded.payload, event.asset_ids))
    return tape


def load_tape(paths: Iterable[Path]) -> list[TapeFrame]:
    """The frames of the recordings, merged by offset from each file's first frame."""
    tape = [frame for path in paths for frame in tape_of(read_recording(path))]
    return sorted(tape, key=lambda f: f.offset_ms)  # stable: file order within equal offsets


def simulated_tape(frames: int = 2_000, *, markets: int = 2, seed: int = 7) -> list[TapeFrame]:
    """A deterministic tape of simulated markets (`price_changes` schema): a clone without recordings."""
    from pets.pipelines.simulator import simulated_frames

    payloads = simulated_frames(frames, markets=markets, seed=seed)
    return tape_of(RecordedFrame(payload, None) for payload in payloads)


def _timestamp_ms(payload: bytes, recv_ns: int | None, previous: int) -> int:
    value = json.loads(payload).get("timestamp")
    if isinstance(value, (str, int)) and str(value).isdigit():
        return int(value)
    return recv_ns // 1_000_000 if recv_ns else previous


@dataclass
class VenueBook:
    """One token's book as the venue holds it: price string -> size string per side."""

    asset_id: str
    market: str = ""
    timestamp: str = "0"
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)

    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("event_type")
        self.market = str(event.get("market") or self.market)
        self.timestamp = str(event.get("timestamp") or self.timestamp)
        if kind == "book":
            self.bids = {level["price"]: level["size"] for level in event.get("bids", ())}
            self.asks = {level["price"]: level["size"] for level in event.get("asks", ())}
        elif kind == "price_change":
            changes = event.get("changes") or [
                c for c in event.get("price_changes") or () if c.get("asset_id") == self.asset_id
            ]
            for change in changes:
                side = self.bids if change["side"] == "BUY" else self.asks
                if Decimal(change["size"]) == 0:
                    side.pop(change["price"], None)
                else:
                    side[change["price"]] = change["size"]

    def rest_body(self) -> dict[str, Any]:
        """The REST /book answer: bids ascending, asks descending (best last), as the venue sends them."""
        bids = [{"price": p, "size": self.bids[p]} for p in sorted(self.bids, key=Decimal)]
        asks = [{"price": p, "size": self.asks[p]} for p in sorted(self.asks, key=Decimal, reverse=True)]
        digest = hashlib.sha1(json.dumps([self.asset_id, bids, asks]).encode()).hexdigest()
        return {
            "market": self.market,
            "asset_id": self.asset_id,
            "bids": bids,
            "asks": asks,
            "hash": digest,
            "timestamp": self.timestamp,
        }

    def ws_snapshot(self) -> bytes:
        body = self.rest_body()
        return msgspec.json.encode({"event_type": "book", **body})


@dataclass
class _Client:
    conn: ServerConnection
    number: int
    assets: set[str] = field(default_factory=set)
    stalled: bool = False


class ServedFrame(msgspec.Struct, frozen=True):
    connection: int
    payload: bytes


@dataclass(frozen=True)
class _Hook:
    after: int
    action: str  # "disconnect" | "stall" | "pause"
    missed: int


class ClobServer(LoopbackServer):
    """The local CLOB; run it with `serve_clob(...)` or `start()` / `stop()`."""

    ws_path = "/ws/market"

    def __init__(
        self,
        tape: Sequence[TapeFrame],
        *,
        speed: float | None = None,
        batch_same_timestamp: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self.tape = list(tape)
        self.speed = speed
        self.batch_same_timestamp = batch_same_timestamp
        self.books: dict[str, VenueBook] = {}
        self.served: list[ServedFrame] = []
        self.rest_served: list[dict[str, Any]] = []
        self.pings = 0
        self.connections = 0
        self.played = 0
        self.tape_done = threading.Event()
        self._lock = threading.Lock()
        self._clients: dict[int, _Client] = {}
        self._numbers = itertools.count(1)
        self._hooks: list[_Hook] = []
        self._subscribed: asyncio.Event | None = None
        self._resumed = asyncio.Event()
        self._min_client = 0  # after a hook, the tape waits for a connection numbered above this
        super().__init__(host, "clob-server", self._rest_handler())

    # ---- lifecycle -------------------------------------------------------------------------------
    async def _open(self) -> None:
        self._subscribed = asyncio.Event()
        self._resumed = asyncio.Event()
        self._ws = await serve(self._handle, self._host, 0, ping_interval=None, compression=None)
        asyncio.get_running_loop().create_task(self._play())

    # ---- hooks -----------------------------------------------------------------------------------
    def disconnect_at(self, after: int, missed: int = 0) -> None:
        """Drop every connection once `after` frames have been played; `missed` frames follow unseen."""
        self._hooks.append(_Hook(after, "disconnect", missed))

    def stall_at(self, after: int, missed: int = 0) -> None:
        """Go silent on every connection once `after` frames have been played (sockets stay open)."""
        self._hooks.append(_Hook(after, "stall", missed))

    def pause_at(self, after: int) -> None:
        """Hold the tape once `after` frames have been played, until `resume()` (connections stay live)."""
        self._hooks.append(_Hook(after, "pause", 0))

    def resume(self) -> None:
        self._loop.call_soon_threadsafe(self._resumed.set)

    def subscriptions(self) -> dict[int, set[str]]:
        """Connection number -> the assets it is subscribed to, for the open connections."""
        return {n: set(c.assets) for n, c in list(self._clients.items())}

    def force_disconnect(self) -> None:
        asyncio.run_coroutine_threadsafe(self._act("disconnect"), self._loop).result(10)

    def stall(self) -> None:
        asyncio.run_coroutine_threadsafe(self._act("stall"), self._loop).result(10)

    def inject(self, message: str) -> None:
        """Send raw text to every open connection (e.g. a malformed frame)."""

        async def send_all() -> None:
            for client in list(self._clients.values()):
                await self._send(client, message)

        asyncio.run_coroutine_threadsafe(send_all(), self._loop).result(10)

    def book(self, asset_id: str) -> dict[str, Any] | None:
        """The venue's current REST body for one token."""
        with self._lock:
            book = self.books.get(asset_id)
            return None if book is None else book.rest_body()

    async def _act(self, action: str) -> None:
        self._min_client = max(self._clients, default=self._min_client)
        for client in list(self._clients.values()):
            if action == "stall":
                client.stalled = True
            else:
                client.conn.transport.abort()

    # ---- the tape --------------------------------------------------------------------------------
    async def _play(self) -> None:
        assert self._subscribed is not None
        await self._subscribed.wait()
        base = time.monotonic()
        index = 0
        while index < len(self.tape):
            end = index + 1
            if self.batch_same_timestamp:
                while end < len(self.tape) and self.tape[end].ts_ms == self.tape[index].ts_ms:
                    end += 1
            group = self.tape[index:end]
            if self.speed:
                delay = base + group[0].offset_ms / 1000 / self.speed - time.monotonic()
                await asyncio.sleep(max(delay, 0))
            else:
                await asyncio.sleep(0)  # let PINGs and subscriptions through between batches
            self._apply(group)
            for client in list(self._clients.values()):
                await self._deliver(client, group)
            self.played = index = end
            hooks = [h for h in self._hooks if h.after <= index]
            for hook in hooks:
                self._hooks.remove(hook)
                if hook.action == "pause":
                    await self._resumed.wait()
                    self._resumed.clear()
                    continue
                await self._act(hook.action)
                missed = self.tape[index : index + hook.missed]
                self._apply(missed)
                self.played = index = index + len(missed)
                await self._wait_for_new_subscriber()
            if hooks and index < len(self.tape):  # pace on from here, not from before the pause
                base = time.monotonic() - self.tape[index].offset_ms / 1000 / (self.speed or 1)
        self.tape_done.set()

    async def _wait_for_new_subscriber(self) -> None:
        assert self._subscribed is not None
        while not any(n > self._min_client and c.assets for n, c in self._clients.items()):
            self._subscribed.clear()
            await self._subscribed.wait()

    def _apply(self, frames: Sequence[TapeFrame]) -> None:
        with self._lock:
            for frame in frames:
                event = json.loads(frame.payload)
                for asset in frame.asset_ids:
                    self.books.setdefault(asset, VenueBook(asset)).apply(event)

    async def _deliver(self, client: _Client, frames: Sequence[TapeFrame]) -> None:
        if client.stalled:
            return
        payloads = [f.payload for f in frames if client.assets.intersection(f.asset_ids)]
        if not payloads:
            return
        message = payloads[0] if len(payloads) == 1 else b"[" + b",".join(payloads) + b"]"
        if await self._send(client, message.decode()):
            self.served.extend(ServedFrame(client.number, p) for p in payloads)

    async def _send(self, client: _Client, message: str) -> bool:
        try:
            await client.conn.send(message)
        except ConnectionClosed:
            self._clients.pop(client.number, None)
            return False
        return True

    # ---- the WebSocket ---------------------------------------------------------------------------
    async def _handle(self, conn: ServerConnection) -> None:
        self.connections += 1
        client = _Client(conn, next(self._numbers))
        try:
            first = json.loads(await asyncio.wait_for(conn.recv(), timeout=10))
            assets = first.get("assets_ids")
            if str(first.get("type", "")).lower() != "market" or not isinstance(assets, list):
                await conn.close(1008, 'expected {"type":"market","assets_ids":[...]}')
                return
            self._clients[client.number] = client
            await self._subscribe(client, assets)
            async for message in conn:
                if message == "PING":
                    self.pings += 1
                    await conn.send(PONG.decode())
                    continue
                request = json.loads(message)
                if request.get("operation") == "subscribe":
                    await self._subscribe(client, request.get("assets_ids") or [])
                elif request.get("operation") == "unsubscribe":
                    client.assets.difference_update(request.get("assets_ids") or [])
        except (ConnectionClosed, TimeoutError, json.JSONDecodeError, AttributeError):
            return
        finally:
            self._clients.pop(client.number, None)

    async def _subscribe(self, client: _Client, asset_ids: Sequence[str]) -> None:
        new = [str(a) for a in dict.fromkeys(asset_ids) if str(a) not in client.assets]
        client.assets.update(new)
        assert self._subscribed is not None
        self._subscribed.set()
        if not new:
            await self._send(client, NO_NEW_ASSETS.decode())
            return
        with self._lock:
            snapshots = [self.books[a].ws_snapshot() for a in new if a in self.books]
        if snapshots and not client.stalled:
            message = snapshots[0] if len(snapshots) == 1 else b"[" + b",".join(snapshots) + b"]"
            if await self._send(client, message.decode()):
                self.served.extend(ServedFrame(client.number, s) for s in snapshots)

    # ---- REST ------------------------------------------------------------------------------------
    def _rest_answer(self, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
        if method == "GET" and path == "/book":
            token = (parse_qs(query).get("token_id") or [""])[0]
            book = self.book(token)
            if book is None:
                return 404, NO_BOOK
            self.rest_served.append(book)
            return 200, book
        if method == "POST" and path == "/books":
            try:
                wanted = [str(item["token_id"]) for item in json.loads(body)]
            except (ValueError, TypeError, KeyError):
                return 400, {"error": 'expected [{"token_id": "..."}]'}
            books = [b for b in (self.book(t) for t in wanted) if b is not None]
            self.rest_served.extend(books)
            return 200, books
        return 404, {"error": f"no route {method} {path}"}

    def _rest_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                status, body = server._rest_answer(method, parts.path, parts.query, self.rfile.read(length))
                payload = msgspec.json.encode(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read rest_served
                return

        return Handler


@contextmanager
def serve_clob(
    recordings: Iterable[Path] | Sequence[TapeFrame],
    *,
    speed: float | None = None,
    batch_same_timestamp: bool = True,
) -> Iterator[ClobServer]:
    """A running local CLOB over recording files (or a ready tape) for the block; stopped afterwards."""
    items = list(recordings)
    paths = [i for i in items if isinstance(i, Path)]
    tape = [i for i in items if isinstance(i, TapeFrame)] or load_tape(paths)
    server = ClobServer(tape, speed=speed, batch_same_timestamp=batch_same_timestamp).start()
    try:
        yield server
    finally:
        server.stop()
