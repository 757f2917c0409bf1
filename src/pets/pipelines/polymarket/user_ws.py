"""The authenticated user-channel client: our order and trade events, keepalive, reconnect, REST reconcile.

Subscribe `{"auth":{"apiKey","secret","passphrase"},"markets":[condition ids],"type":"user"}` (an
empty `markets` list = every market of the API key). The venue sends `order` events (PLACEMENT /
UPDATE / CANCELLATION) and `trade` events (MATCHED -> MINED -> CONFIRMED, or RETRYING -> FAILED);
a message may be one event or a JSON array of them. Text `PING` every `ping_interval_s`, answered
`PONG`; no PONG for `pong_timeout_s` = a silent socket, handled like a dropped one.

The venue replays nothing after a reconnect, so after every gap the client emits `lost`, then
reconciles over REST with py-clob-client-v2: `/data/trades` since shortly before the last event
it saw (`get_trades`) as `trade` messages (source "rest"), then `/data/orders` (`get_open_orders`)
as one `open_orders` message, then `resynced`. The consumer (pets.execution.live) counts each
(trade, order) once, so a trade seen on the socket and again over REST is harmless. A client started
with `resume_since_ms` (the consumer resumes from a snapshot that saw the events up to that venue
time) begins in that state: `lost`, and the same REST reconcile right after its first connect, so what
happened at the venue while the consumer was down is learned once subscribed (nothing falls between
the REST read and the subscription).

The client runs its own event loop in a thread; `drain()` hands over what arrived (thread-safe).
Secrets are sent in the subscription only and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

log = logging.getLogger(__name__)

PONG = "PONG"
UserMessageKind = Literal["order", "trade", "open_orders", "lost", "resynced"]
RECONCILE_LOOKBACK_S = 60  # /data/trades from this long before the last event seen (clock skew, late MATCHED)


class MakerOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    asset_id: str
    matched_amount: str
    price: str
    outcome: str = ""
    side: str | None = None  # present in newer frames; the maker's own side
    owner: str = ""
    fee_rate_bps: str = "0"


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    market: str
    asset_id: str
    side: str
    price: str
    original_size: str
    size_matched: str = ""
    status: str = ""  # LIVE / MATCHED / CANCELED / INVALID / "CANCELED_<why>" (FOK killed)
    type: str = ""  # PLACEMENT / UPDATE / CANCELLATION ("" in REST /data/orders rows)
    order_type: str = ""
    outcome: str = ""
    owner: str = ""
    timestamp: str | int | None = None
    created_at: str | int | None = None
    associate_trades: list[str] | None = None


class TradeEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    market: str
    asset_id: str
    side: str
    size: str
    price: str
    status: str  # MATCHED / MINED / CONFIRMED / RETRYING / FAILED
    taker_order_id: str
    trader_side: str = ""  # TAKER / MAKER: which side of this trade we are
    maker_orders: list[MakerOrder] = []
    fee_rate_bps: str = "0"
    outcome: str = ""
    owner: str = ""
    timestamp: str | int | None = None
    match_time: str | int | None = None
    last_update: str | int | None = None
    transaction_hash: str | None = None


class UserMessage(msgspec.Struct, frozen=True, kw_only=True):
    """What the client hands on: one venue event, a REST open-orders snapshot, or a continuity marker."""

    kind: UserMessageKind
    order: OrderEvent | None = None
    trade: TradeEvent | None = None
    open_orders: list[OrderEvent] = []
    source: Literal["ws", "rest", "pets"] = "ws"
    reason: str = ""
    recv_ns: int


def decimal_of(value: str | None) -> Decimal:
    """A venue decimal string ("" or None = 0)."""
    return Decimal(value) if value else Decimal(0)


def event_ms(*values: str | int | None) -> int:
    """The first usable venue timestamp in ms (the venue mixes ms and s); 0 when none is."""
    for value in values:
        text = str(value or "")
        if text.isdigit():
            number = int(text)
            return number if number >= 10**12 else number * 1000
    return 0


_Row = TypeVar("_Row", "OrderEvent", "TradeEvent")
_event_decoder = msgspec.json.Decoder(dict[str, Any] | list[dict[str, Any]])


def parse_user_frame(raw: bytes | str, recv_ns: int) -> list[UserMessage]:
    """The events of one WebSocket message; ValueError naming what is wrong."""
    try:
        decoded = _event_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a JSON event: {exc}") from None
    out = []
    for item in decoded if isinstance(decoded, list) else [decoded]:
        kind = str(item.get("event_type") or item.get("type") or "").lower()
        try:
            if kind in ("order", "placement", "update", "cancellation"):
                out.append(
                    UserMessage(kind="order", order=msgspec.convert(item, OrderEvent), recv_ns=recv_ns)
                )
            elif kind == "trade":
                out.append(
                    UserMessage(kind="trade", trade=msgspec.convert(item, TradeEvent), recv_ns=recv_ns)
                )
            else:
                raise ValueError(f"unknown user event type {kind!r}")
        except msgspec.ValidationError as exc:
            raise ValueError(f"bad {kind} event: {exc}") from None
    return out


@dataclass(frozen=True, slots=True)
class UserWsConfig:
    ws_url: str
    api_key: str
    api_secret: str
    api_passphrase: str
    markets: tuple[str, ...] = ()  # condition ids; () = every market of the key
    ping_interval_s: float = 10.0
    pong_timeout_s: float = 30.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    open_timeout_s: float = 10.0

    def __repr__(self) -> str:  # the credentials stay out of logs
        return f"UserWsConfig(ws_url={self.ws_url!r}, markets={self.markets!r})"

    def subscription(self) -> dict[str, Any]:
        auth = {"apiKey": self.api_key, "secret": self.api_secret, "passphrase": self.api_passphrase}
        return {"auth": auth, "markets": list(self.markets), "type": "user"}


class UserChannel:
    """Follows the user channel in a background thread; `drain()` returns what arrived since the last call.

    `rest` is a py-clob-client-v2 ClobClient with L2 credentials (get_trades / get_open_orders) used
    to reconcile after a gap; without it a gap is only reported (`lost`, then `resynced` with a reason).
    `resume_since_ms` (venue ms): start as after a gap, reconciling trades since shortly before it.
    """

    def __init__(
        self, config: UserWsConfig, rest: Any | None = None, *, resume_since_ms: int | None = None
    ) -> None:
        self.config = config
        self.rest = rest
        self.connects = 0
        self.pongs = 0
        self.dead_letters: list[tuple[str, bytes]] = []
        self._queue: queue.SimpleQueue[UserMessage] = queue.SimpleQueue()
        self._last_event_ms = resume_since_ms or 0
        self._resume = resume_since_ms is not None
        self._stopping = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="user-ws", daemon=True)

    def start(self) -> UserChannel:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def drain(self) -> list[UserMessage]:
        out = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self._queue.get_nowait())
        return out

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._follow())
        finally:
            self._loop.close()

    async def _follow(self) -> None:
        attempt = 0
        gap, gap_reason = False, ""
        if self._resume:
            gap_reason = f"resumed from a snapshot: events after {self._last_event_ms} ms were not seen"
            self._put(UserMessage(kind="lost", source="pets", reason=gap_reason, recv_ns=time.time_ns()))
            gap = True
        while not self._stopping.is_set():
            reason = ""
            try:
                async with connect(
                    self.config.ws_url,
                    open_timeout=self.config.open_timeout_s,
                    ping_interval=None,  # the venue's keepalive is the text PING
                    compression=None,
                    max_size=None,
                    close_timeout=2,
                    proxy=None,
                ) as conn:
                    await conn.send(msgspec.json.encode(self.config.subscription()).decode())
                    self.connects += 1
                    if gap:
                        gap = not await asyncio.to_thread(self._reconcile, gap_reason)
                    attempt = 0
                    reason = await self._receive(conn)
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                reason = f"connect failed: {exc!r}"
            if self._stopping.is_set():
                return
            if not gap and self.connects:
                log.warning("user channel lost: %s", reason)
                self._put(UserMessage(kind="lost", source="pets", reason=reason, recv_ns=time.time_ns()))
                gap, gap_reason = True, reason
            await self._sleep(min(self.config.reconnect_max_s, self.config.reconnect_initial_s * 2**attempt))
            attempt += 1

    async def _receive(self, conn: ClientConnection) -> str:
        pinger = asyncio.create_task(self._ping(conn))
        last_pong = time.monotonic()
        try:
            while not self._stopping.is_set():
                timeout = self.config.pong_timeout_s - (time.monotonic() - last_pong)
                if timeout <= 0:
                    await conn.close(1000, "no PONG")
                    return f"no PONG for {self.config.pong_timeout_s:g}s with the socket open"
                try:
                    async with asyncio.timeout(min(timeout, 0.2)):
                        message = await conn.recv()
                except TimeoutError:
                    continue
                except ConnectionClosed as exc:
                    return f"socket closed: {exc}"
                if message.strip() == PONG:
                    self.pongs += 1
                    last_pong = time.monotonic()
                    continue
                self._on_message(message)
            await conn.close()
            return "stopped"
        finally:
            pinger.cancel()

    def _on_message(self, message: str | bytes) -> None:
        recv_ns = time.time_ns()
        try:
            events = parse_user_frame(message, recv_ns)
        except ValueError as exc:
            raw = message.encode() if isinstance(message, str) else message
            log.warning("user channel: dead letter (%s)", exc)
            self.dead_letters.append((str(exc), raw))
            return
        for event in events:
            body = event.order or event.trade
            assert body is not None
            self._last_event_ms = max(self._last_event_ms, event_ms(body.timestamp))
            self._put(event)

    def _reconcile(self, gap: str) -> bool:
        """REST after a gap: trades since just before the last event, then the open orders; True if done.
        The messages carry the wall clock before the reads: an order posted later may miss the listing."""
        recv_ns = time.time_ns()
        if self.rest is None:
            self._put(
                UserMessage(kind="resynced", source="pets", reason=f"no REST client; {gap}", recv_ns=recv_ns)
            )
            return True
        from py_clob_client_v2.clob_types import OpenOrderParams, TradeParams

        after = max(self._last_event_ms // 1000 - RECONCILE_LOOKBACK_S, 0)
        markets = self.config.markets or (None,)
        try:
            trades = [t for m in markets for t in self.rest.get_trades(TradeParams(market=m, after=after))]
            orders = [o for m in markets for o in self.rest.get_open_orders(OpenOrderParams(market=m))]
        except Exception as exc:  # the venue's errors are many; a failed reconcile is retried on the next gap
            log.warning("user channel reconcile failed: %s", exc)
            return False
        for trade in rest_rows(trades, TradeEvent, self.dead_letters):
            self._put(UserMessage(kind="trade", trade=trade, source="rest", recv_ns=recv_ns))
        open_orders = rest_rows(orders, OrderEvent, self.dead_letters)
        self._put(UserMessage(kind="open_orders", open_orders=open_orders, source="rest", recv_ns=recv_ns))
        self._put(UserMessage(kind="resynced", source="pets", reason=gap, recv_ns=recv_ns))
        return True

    def _put(self, message: UserMessage) -> None:
        self._queue.put(message)

    async def _ping(self, conn: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await conn.send("PING")
                await asyncio.sleep(self.config.ping_interval_s)

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


def rest_rows(rows: list[Any], kind: type[_Row], dead_letters: list[tuple[str, bytes]]) -> list[_Row]:
    """REST rows (py-clob-client-v2 dicts) as the user channel's events; a row that does not convert
    is left out and appended to `dead_letters` as (reason, raw JSON)."""
    out = []
    for row in rows:
        try:
            out.append(msgspec.convert(row, kind))
        except msgspec.ValidationError as exc:
            dead_letters.append((f"REST {kind.__name__}: {exc}", msgspec.json.encode(row)))
    return out
