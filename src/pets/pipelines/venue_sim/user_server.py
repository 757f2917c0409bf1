"""A local trading venue: the authenticated CLOB V2 REST endpoints and the user-channel WebSocket.

Stands in for Polymarket when the real py-clob-client-v2 places orders and the user-channel client
follows them. REST (L2 HMAC checked on every private route, as the venue does):
`GET /version`, `/tick-size`, `/neg-risk`, `/balance-allowance`, `/data/orders`, `/data/trades`;
`POST /order`, `/orders` (batch, at most 15), `/v1/heartbeats`; `DELETE /order`, `/orders`, `/cancel-all`.
A posted order is checked as the venue does (known token, price on the tick grid, 2-decimal size,
amount decimals of the tick) and kept open; its venue id is its EIP-712 order hash, as on the venue.

A re-posted order whose hash the venue already holds (open, matched or cancelled) is refused and not
placed again: `POST /order` answers HTTP 400 `{"error": "order <hash> is invalid. Duplicated."}`, and
`POST /orders` the same message as that order's element of the 200 array. Polymarket documents this
message among the order processing errors (docs.polymarket.com/resources/error-codes, "order {id} is
invalid. Duplicated."; INVALID_ORDER_DUPLICATED "Same order has already been placed, can't be placed
again" in docs.polymarket.com/trading/orders/create), and public clients see it as HTTP 400 with that
`error` body, also for an order that was already matched or killed. Assumptions (not documented): a
batch element carries the message in `errorMsg` with `success: false` like the other refusals here,
and no user-channel event is published for a refused duplicate.

User channel: first message `{"auth":{"apiKey","secret","passphrase"},"markets":[...],"type":"user"}`
(wrong credentials close the socket with 1008; an empty `markets` follows every market), text
`PING` -> `PONG`. Events have the fields of the real examples (data/polymarket/ws_examples/
order_*.json, user_trade*.json): a posted order publishes `order` PLACEMENT, a cancel CANCELLATION;
`fill()` publishes a `trade` through the given statuses (MATCHED -> MINED -> CONFIRMED, or
MATCHED -> RETRYING -> FAILED) and the order UPDATE. An event published while nobody is subscribed
is lost, as on the venue, but REST `/data/trades` and `/data/orders` still show it.
Test hooks: `publish(event)` (any raw event, e.g. a real recorded one), `drop_connections()`,
`refuse_next(message)`, `on_post` (called with each accepted order), `lose_order_posts(n, taken=,
status=)`, `lose_cancels(n, taken=)`, `lose_reads(n)` (the next n order posts / cancels / REST reads of
orders and trades get no answer from the venue: the connection closes without a response, or a
gateway answers `status` (502, 504), after the venue processed the request or before it read it, as
when a request or its answer is lost in transit).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pets.pipelines.venue_sim.serving import LoopbackServer
from pets.venue.precision import MICRO_PER_UNIT, on_size_grid, on_tick_grid, precision

END_CURSOR = "LTE="
MAX_BATCH = 15
ORDER_POSTS = ("/order", "/orders")
# which requests the lose_* hooks apply to
LOSABLE = {
    **{("POST", path): "order_post" for path in ORDER_POSTS},
    **{("DELETE", path): "cancel" for path in ("/order", "/orders", "/cancel-all")},
    **{("GET", path): "read" for path in ("/data/orders", "/data/trades")},
}
MAKER_ADDRESS = "0xa3D82Ed56F4c68d2328Fb8c29e568Ba2cAF7d7c8"


@dataclass(frozen=True, slots=True)
class VenueToken:
    """One outcome token the venue trades: its market (condition id), outcome, tick, neg-risk flag."""

    token_id: str
    market: str
    outcome: str
    complement: str  # the other outcome token of the binary market
    tick: Decimal = Decimal("0.01")
    neg_risk: bool = False


def binary_market(
    market: str, yes: str, no: str, tick: str = "0.01", neg_risk: bool = False
) -> list[VenueToken]:
    return [
        VenueToken(yes, market, "Yes", no, Decimal(tick), neg_risk),
        VenueToken(no, market, "No", yes, Decimal(tick), neg_risk),
    ]


@dataclass
class VenueOrder:
    id: str
    token: VenueToken
    side: str
    price: Decimal
    size: Decimal
    order_type: str
    owner: str
    created_s: int
    size_matched: Decimal = Decimal(0)
    status: str = "LIVE"
    trades: list[str] = field(default_factory=list)

    def row(self, kind: str = "") -> dict[str, Any]:
        """The order as an `order` event (`kind` PLACEMENT/UPDATE/CANCELLATION) or a /data/orders row."""
        body = {
            "asset_id": self.token.token_id,
            "associate_trades": list(self.trades) or None,
            "created_at": str(self.created_s),
            "expiration": "0",
            "id": self.id,
            "maker_address": MAKER_ADDRESS,
            "market": self.token.market,
            "order_owner": self.owner,
            "order_type": self.order_type,
            "original_size": str(self.size),
            "outcome": self.token.outcome,
            "owner": self.owner,
            "price": str(self.price),
            "side": self.side,
            "size_matched": str(self.size_matched),
            "status": self.status,
        }
        if kind:
            body |= {"event_type": "order", "timestamp": str(_now_ms()), "type": kind}
        return body


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class LocalTradingVenue(LoopbackServer):
    """Run with `serve_trading_venue(...)` or `start()` / `stop()`."""

    ws_path = "/ws/user"

    def __init__(
        self,
        tokens: Iterable[VenueToken],
        *,
        api_key: str,
        api_secret: str,
        api_passphrase: str,
        balance: str = "1000000000",
        allowance: str = "999999999000000",
        version: int = 2,
        host: str = "127.0.0.1",
    ) -> None:
        self.tokens = {t.token_id: t for t in tokens}
        self.creds = (api_key, api_secret, api_passphrase)
        self.balance, self.allowance, self.version = balance, allowance, version
        self.orders: dict[str, VenueOrder] = {}  # every accepted order by venue id
        self.trades: dict[str, dict[str, Any]] = {}  # trade id -> latest trade row
        self.requests: list[tuple[str, str, dict[str, Any], Any]] = []  # method, path, query, body
        self.published: list[dict[str, Any]] = []  # events delivered to at least one subscriber
        self.subscriptions: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.pings = 0
        self.on_post: Callable[[VenueOrder], None] | None = None
        self._refusal: str | None = None
        # per kind of request (LOSABLE), one (processed by the venue?, gateway status or None) per request
        # to leave without the venue's answer
        self._losses: dict[str, list[tuple[bool, int | None]]] = {kind: [] for kind in LOSABLE.values()}
        self._trade_ids = itertools.count(1)
        self._lock = threading.RLock()
        self._clients: dict[int, tuple[ServerConnection, set[str]]] = {}
        self._numbers = itertools.count(1)
        super().__init__(host, "trading venue", self._rest_handler())

    # ---- lifecycle -------------------------------------------------------------------------------
    async def _open(self) -> None:
        self._ws = await serve(self._handle, self._host, 0, ping_interval=None, compression=None)

    # ---- hooks -----------------------------------------------------------------------------------
    def refuse_next(self, message: str) -> None:
        """Answer the next order post with HTTP 400 and this error (e.g. "not enough balance / allowance")."""
        self._refusal = message

    def lose_order_posts(self, count: int, *, taken: bool = True, status: int | None = None) -> None:
        """Leave the next `count` POST /order or /orders without the venue's answer: the connection is
        closed without a response, or a gateway answers `status`; `taken`: the venue processed them
        first (the answer was lost), else it never did."""
        with self._lock:
            self._losses["order_post"] += [(taken, status)] * count

    def lose_cancels(self, count: int, *, taken: bool = True) -> None:
        """The next `count` cancels (DELETE /order, /orders, /cancel-all) get no answer."""
        with self._lock:
            self._losses["cancel"] += [(taken, None)] * count

    def lose_reads(self, count: int) -> None:
        """The next `count` REST reads of orders or trades get no answer."""
        with self._lock:
            self._losses["read"] += [(True, None)] * count

    def open_orders(self) -> list[VenueOrder]:
        with self._lock:
            return [o for o in self.orders.values() if o.status == "LIVE"]

    def publish(self, event: dict[str, Any]) -> int:
        """Send one raw event to every subscriber of its market; returns how many received it."""
        return asyncio.run_coroutine_threadsafe(self._publish(event), self._loop).result(10)

    def subscriber_count(self) -> int:
        return len(self._clients)

    def drop_connections(self) -> None:
        """Abort every user-channel socket (the client must reconnect; nothing is replayed)."""

        async def abort() -> None:
            for conn, _ in list(self._clients.values()):
                conn.transport.abort()

        asyncio.run_coroutine_threadsafe(abort(), self._loop).result(10)

    def fill(
        self,
        venue_id: str,
        qty: str,
        *,
        trader_side: str = "MAKER",
        cross: bool = False,
        statuses: Iterable[str] = ("MATCHED", "MINED", "CONFIRMED"),
        maker_side_field: bool = True,
        fee_rate_bps: str = "0",
    ) -> str:
        """Match `qty` of our order `venue_id` against another party; publish the trade through `statuses`.

        MAKER: we rest and a taker hits us; `cross` = that taker traded the complement token (a YES
        buy matched by a NO buy: minted). TAKER: our order took a resting maker (the complement token's
        when `cross`). `maker_side_field=False` leaves out `side` in maker_orders, as older frames do;
        `fee_rate_bps` is the taker's fee rate on the trade.
        """
        statuses = list(statuses)
        with self._lock:
            order = self.orders[venue_id]
            amount = Decimal(qty)
            order.size_matched += amount
            trade_id = f"trade-{next(self._trade_ids):04d}"
            order.trades.append(trade_id)
            if order.size_matched >= order.size:
                order.status = "MATCHED"
            other = self.tokens[order.token.complement] if cross else order.token
            other_side = order.side if cross else ("SELL" if order.side == "BUY" else "BUY")
            other_price = 1 - order.price if cross else order.price
            if trader_side == "MAKER":
                maker = self._maker_row(venue_id, order.token, order.side, order.price, amount, order.owner)
                taker = ("0xtaker" + trade_id, other, other_side, other_price, "other-owner")
            else:
                maker = self._maker_row("0xmaker" + trade_id, other, other_side, other_price, amount, "other")
                taker = (venue_id, order.token, order.side, order.price, order.owner)
            if not maker_side_field:
                maker.pop("side")
            taker_id, taker_token, taker_side, taker_price, taker_owner = taker
            now_ms = _now_ms()
            trade = {
                "asset_id": taker_token.token_id,
                "bucket_index": 0,
                "event_type": "trade",
                "fee_rate_bps": fee_rate_bps,
                "id": trade_id,
                "last_update": str(now_ms // 1000),
                "maker_address": MAKER_ADDRESS,
                "maker_orders": [maker],
                "market": order.token.market,
                "match_time": str(now_ms // 1000),
                "outcome": taker_token.outcome,
                "owner": taker_owner,
                "price": str(taker_price),
                "side": taker_side,
                "size": str(amount),
                "status": statuses[0],
                "taker_order_id": taker_id,
                "timestamp": str(now_ms),
                "trade_owner": order.owner,
                "trader_side": trader_side,
                "transaction_hash": "0x" + hashlib.sha256(trade_id.encode()).hexdigest(),
                "type": "TRADE",
            }
            update = order.row("UPDATE")
        for n, status in enumerate(statuses):
            row = {**trade, "status": status, "timestamp": str(now_ms + n)}
            with self._lock:
                self.trades[trade_id] = row
            self.publish(row)
            if n == 0:
                self.publish(update)
        return trade_id

    @staticmethod
    def _maker_row(
        order_id: str, token: VenueToken, side: str, price: Decimal, amount: Decimal, owner: str
    ) -> dict[str, Any]:
        return {
            "order_id": order_id,
            "owner": owner,
            "maker_address": MAKER_ADDRESS,
            "matched_amount": str(amount),
            "price": str(price),
            "fee_rate_bps": "0",
            "asset_id": token.token_id,
            "outcome": token.outcome,
            "side": side,
        }

    # ---- the user channel ------------------------------------------------------------------------
    async def _publish(self, event: dict[str, Any]) -> int:
        text = json.dumps(event)
        sent = 0
        for number, (conn, markets) in list(self._clients.items()):
            if markets and event.get("market") not in markets:
                continue
            try:
                await conn.send(text)
                sent += 1
            except ConnectionClosed:
                self._clients.pop(number, None)
        if sent:
            self.published.append(event)
        return sent

    async def _handle(self, conn: ServerConnection) -> None:
        number = next(self._numbers)
        try:
            first = json.loads(await asyncio.wait_for(conn.recv(), timeout=10))
            auth = first.get("auth") or {}
            creds = (auth.get("apiKey"), auth.get("secret"), auth.get("passphrase"))
            if str(first.get("type", "")).lower() != "user" or creds != self.creds:
                await conn.close(1008, "invalid auth or subscription")
                return
            self.subscriptions.append({k: v for k, v in first.items() if k != "auth"})
            self._clients[number] = (conn, {str(m) for m in first.get("markets") or ()})
            async for message in conn:
                if message == "PING":
                    self.pings += 1
                    await conn.send("PONG")
        except (ConnectionClosed, TimeoutError, json.JSONDecodeError, AttributeError):
            return
        finally:
            self._clients.pop(number, None)

    # ---- REST ------------------------------------------------------------------------------------
    def _authenticated(self, headers: Any, method: str, path: str, raw: str) -> bool:
        """L2: POLY_SIGNATURE = urlsafe-b64(HMAC-SHA256(b64decode(secret), ts + method + path + body))."""
        api_key, secret, passphrase = self.creds
        message = f"{headers.get('POLY_TIMESTAMP')}{method}{path}{raw}"
        expected = base64.urlsafe_b64encode(
            hmac.new(base64.urlsafe_b64decode(secret), message.encode(), hashlib.sha256).digest()
        ).decode()
        return (
            headers.get("POLY_API_KEY") == api_key
            and hmac.compare_digest(str(headers.get("POLY_SIGNATURE")), expected)
            and headers.get("POLY_PASSPHRASE") == passphrase
        )

    def _answer(
        self, method: str, path: str, query: dict[str, str], headers: Any, raw: str
    ) -> tuple[int, Any] | None:
        """(HTTP status, JSON body), or None: close the connection without an answer."""
        body: Any = json.loads(raw) if raw else {}
        with self._lock:
            self.requests.append((method, path, query, body))
            losses = self._losses.get(LOSABLE.get((method, path), ""))
            lost = losses.pop(0) if losses else None
        if lost is None:
            return self._route(method, path, query, headers, raw, body)
        taken, status = lost
        if taken:
            self._route(method, path, query, headers, raw, body)
        return None if status is None else (status, {"error": f"gateway answered {status}"})

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: Any, raw: str, body: Any
    ) -> tuple[int, Any]:
        token = self.tokens.get(query.get("token_id", ""))
        if (method, path) == ("GET", "/version"):
            return 200, {"version": self.version}
        if (method, path) == ("GET", "/tick-size"):
            return (
                (200, {"minimum_tick_size": float(token.tick)})
                if token
                else (404, {"error": "market not found"})
            )
        if (method, path) == ("GET", "/neg-risk"):
            return (200, {"neg_risk": token.neg_risk}) if token else (404, {"error": "market not found"})
        if path in ("/auth/api-key", "/auth/derive-api-key"):  # L1: the key's EIP-712 headers
            if not (
                headers.get("POLY_ADDRESS") and headers.get("POLY_SIGNATURE") and headers.get("POLY_NONCE")
            ):
                return 401, {"error": "Invalid L1 Request headers"}
            api_key, secret, passphrase = self.creds
            return 200, {"apiKey": api_key, "secret": secret, "passphrase": passphrase}
        if not self._authenticated(headers, method, path, raw):
            return 401, {"error": "Unauthorized/Invalid api key"}
        if (method, path) == ("GET", "/balance-allowance"):
            return 200, {"balance": self.balance, "allowance": self.allowance}
        if (method, path) == ("GET", "/data/orders"):
            rows = [o.row() for o in self.open_orders() if query.get("market") in (None, o.token.market)]
            return 200, {"data": rows, "next_cursor": END_CURSOR}
        if (method, path) == ("GET", "/data/trades"):
            after = int(query.get("after") or 0)
            with self._lock:
                rows = [
                    t
                    for t in self.trades.values()
                    if query.get("market") in (None, t["market"]) and int(t["match_time"]) >= after
                ]
            return 200, {"data": rows, "next_cursor": END_CURSOR}
        if (method, path) == ("POST", "/order"):
            return self._post_order(body)
        if (method, path) == ("POST", "/orders"):
            if len(body) > MAX_BATCH:
                return 400, {"error": f"too many orders in a batch: {len(body)} > {MAX_BATCH}"}
            return 200, [self._post_order(item)[1] for item in body]
        if (method, path) == ("DELETE", "/order"):
            return 200, self._cancel([body["orderID"]])
        if (method, path) == ("DELETE", "/orders"):
            return 200, self._cancel(list(body))
        if (method, path) == ("DELETE", "/cancel-all"):
            return 200, self._cancel([o.id for o in self.open_orders()])
        if (method, path) == ("POST", "/v1/heartbeats"):
            self.heartbeats += 1
            return 200, {"heartbeat_id": f"hb-{self.heartbeats}"}
        return 404, {"error": f"no route {method} {path}"}

    def _post_order(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        refusal, self._refusal = self._refusal, None
        if refusal:
            return 400, {"success": False, "errorMsg": refusal, "error": refusal}
        signed = body["order"]
        token = self.tokens.get(str(signed["tokenId"]))
        if token is None:
            return 400, {"success": False, "errorMsg": "invalid token id", "error": "invalid token id"}
        venue_id, signer = _hash_and_signer(signed, token.neg_risk)
        if signer != str(signed["signer"]).lower():
            return 400, {"success": False, "errorMsg": "invalid signature", "error": "invalid signature"}
        maker, taker = Decimal(signed["makerAmount"]), Decimal(signed["takerAmount"])
        shares, usdc = (taker, maker) if signed["side"] == "BUY" else (maker, taker)
        size, price = shares / MICRO_PER_UNIT, usdc / shares
        if body.get("orderType") in ("GTC", "GTD"):  # limit orders must be on the grids exactly
            problem = _limit_problem(price, size, usdc / MICRO_PER_UNIT, token.tick)
            if problem:
                return 400, {"success": False, "errorMsg": problem, "error": problem}
        order = VenueOrder(
            venue_id, token, signed["side"], price, size, body["orderType"], body["owner"], _now_ms() // 1000
        )
        with self._lock:
            if venue_id in self.orders:  # every order the venue took stays indexed by its hash
                duplicated = f"order {venue_id} is invalid. Duplicated."
                return 400, {"success": False, "errorMsg": duplicated, "error": duplicated}
            self.orders[venue_id] = order
        self.publish(order.row("PLACEMENT"))
        if self.on_post is not None:
            self.on_post(order)
        return 200, {"success": True, "orderID": venue_id, "status": "live", "errorMsg": ""}

    def _cancel(self, venue_ids: list[str]) -> dict[str, Any]:
        cancelled, refused = [], {}
        for venue_id in venue_ids:
            with self._lock:
                order = self.orders.get(venue_id)
                if order is None or order.status != "LIVE":
                    refused[venue_id] = "order not found or not open"
                    continue
                order.status = "CANCELED"
            cancelled.append(venue_id)
            self.publish(order.row("CANCELLATION"))
        return {"canceled": cancelled, "not_canceled": refused}

    def _rest_handler(self) -> type[BaseHTTPRequestHandler]:
        venue = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                answer = venue._answer(method, parts.path, query, self.headers, raw)
                if answer is None:  # lost in transit: the client sees the connection close, no response
                    self.close_connection = True
                    return
                status, body = answer
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

            def do_DELETE(self) -> None:
                self._reply("DELETE")

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read venue.requests
                return

        return Handler


def _hash_and_signer(signed: dict[str, Any], neg_risk: bool) -> tuple[str, str]:
    """The V2 order's EIP-712 hash for the (neg-risk) exchange's domain and the address that signed it
    (lowercase; "" when the signature does not recover)."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data
    from py_clob_client_v2.config import get_contract_config
    from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2
    from py_clob_client_v2.order_utils.model.order_data_v2 import OrderV2

    contracts = get_contract_config(137)
    exchange = contracts.neg_risk_exchange_v2 if neg_risk else contracts.exchange_v2
    order = OrderV2(
        salt=str(signed["salt"]),
        maker=signed["maker"],
        signer=signed["signer"],
        tokenId=str(signed["tokenId"]),
        makerAmount=str(signed["makerAmount"]),
        takerAmount=str(signed["takerAmount"]),
        side=0 if signed["side"] == "BUY" else 1,  # type: ignore[arg-type]
        signatureType=int(signed["signatureType"]),  # type: ignore[arg-type]
        timestamp=str(signed["timestamp"]),
        metadata=signed["metadata"],
        builder=signed["builder"],
        expiration=str(signed.get("expiration") or "0"),
    )
    builder = ExchangeOrderBuilderV2(exchange, 137, None, domain_version="2")  # type: ignore[arg-type]
    typed = builder.build_order_typed_data(order)
    try:
        signer = Account.recover_message(encode_typed_data(full_message=typed), signature=signed["signature"])
    except ValueError:
        signer = ""
    return builder.build_order_hash(typed), str(signer).lower()


def _limit_problem(price: Decimal, size: Decimal, notional: Decimal, tick: Decimal) -> str | None:
    if not on_tick_grid(price, tick):
        return f"invalid price {price}: not on the {tick} tick grid"
    if not on_size_grid(size):
        return f"invalid size {size}: more than 2 decimals"
    quantum = precision(tick).amount_quantum
    if notional != notional.quantize(quantum):
        return f"invalid amount {notional}: more decimals than tick {tick} allows"
    return None


@contextmanager
def serve_trading_venue(tokens: Iterable[VenueToken], **kwargs: Any) -> Iterator[LocalTradingVenue]:
    """A running local trading venue for the block; stopped afterwards."""
    venue = LocalTradingVenue(tokens, **kwargs).start()
    try:
        yield venue
    finally:
        venue.stop()
