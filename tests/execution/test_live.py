"""The live CLOB adapter against a local HTTP server answering the CLOB V2 endpoints the real
py-clob-client-v2 calls (order post/cancel/cancel-all, heartbeat, tick size, version), checking
the client's L2 HMAC headers and the signed order amounts as the venue would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pets.execution.live import LiveExchange, LiveRefusedError, Wallet, require_live, wallet_from_env
from pets.schemas.config import TradingMode, load_config
from pets.schemas.orders import ApprovedOrder, OrderAction, OrderIntent, Side
from pets.settings import project_root

D = Decimal
TEST_KEY = "0x" + "4c" * 32  # a throwaway key made up for this test, not a secret
SECRET = base64.urlsafe_b64encode(b"local-clob-test-secret-32-bytes!").decode()
WALLET = Wallet(private_key=TEST_KEY, api_key="test-api-key", api_secret=SECRET, api_passphrase="pass")
CONFIG = load_config(project_root() / "config")
LIVE_CONFIG = msgspec.structs.replace(
    CONFIG,
    system=msgspec.structs.replace(
        CONFIG.system, trading=msgspec.structs.replace(CONFIG.system.trading, mode=TradingMode.LIVE)
    ),
)


class LocalClob(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.heartbeats = 0


class _Handler(BaseHTTPRequestHandler):
    server: LocalClob

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authenticated(self, method: str, path: str, raw: str) -> bool:
        """L2: POLY_SIGNATURE = urlsafe-b64(HMAC-SHA256(b64decode(secret), ts + method + path + body))."""
        headers = self.headers
        message = f"{headers.get('POLY_TIMESTAMP')}{method}{path}{raw}"
        expected = base64.urlsafe_b64encode(
            hmac.new(base64.urlsafe_b64decode(SECRET), message.encode(), hashlib.sha256).digest()
        ).decode()
        return (
            headers.get("POLY_API_KEY") == "test-api-key"
            and headers.get("POLY_SIGNATURE") == expected
            and headers.get("POLY_PASSPHRASE") == "pass"
        )

    def _handle(self, method: str) -> None:
        path, _, _ = self.path.partition("?")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        body: Any = json.loads(raw) if raw else {}
        self.server.requests.append((method, path, dict(self.headers), body))
        if (method, path) == ("GET", "/tick-size"):
            return self._answer(200, {"minimum_tick_size": 0.01})
        if (method, path) == ("GET", "/version"):
            return self._answer(200, {"version": 2})
        if not self._authenticated(method, path, raw):
            return self._answer(401, {"error": "Unauthorized/Invalid api key"})
        if (method, path) == ("POST", "/order"):
            order = body["order"]
            if order["tokenId"] == "999":
                return self._answer(400, {"error": "not enough balance / allowance"})
            venue_id = "0x" + hashlib.sha256(order["signature"].encode()).hexdigest()
            self.server.orders[venue_id] = body
            return self._answer(200, {"success": True, "orderID": venue_id, "status": "live", "errorMsg": ""})
        if (method, path) == ("DELETE", "/order"):
            if body["orderID"] in self.server.orders:
                del self.server.orders[body["orderID"]]
                return self._answer(200, {"canceled": [body["orderID"]], "not_canceled": {}})
            return self._answer(200, {"canceled": [], "not_canceled": {body["orderID"]: "order not found"}})
        if (method, path) == ("DELETE", "/cancel-all"):
            cancelled, self.server.orders = list(self.server.orders), {}
            return self._answer(200, {"canceled": cancelled, "not_canceled": {}})
        if (method, path) == ("POST", "/v1/heartbeats"):
            self.server.heartbeats += 1
            return self._answer(200, {"heartbeat_id": f"hb-{self.server.heartbeats}"})
        return self._answer(404, {"error": f"no route {method} {path}"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


@pytest.fixture
def clob() -> Iterator[LocalClob]:
    server = LocalClob()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def approved(
    client_id: str,
    side: Side = "BUY",
    price: str = "0.45",
    size: str = "10",
    *,
    action: OrderAction = "place",
    asset: str = "1234",
    replaces: str | None = None,
    bot: str = "bot_05",
) -> ApprovedOrder:
    intent = OrderIntent(
        client_order_id=client_id,
        bot_id=bot,
        strategy_type="market_making",
        action=action,
        market="0xm",
        asset_id=asset,
        side=side,
        price=D(price),
        size=D(size),
        post_only=True,
        replaces=replaces,
        source_ts_ms=1,
        created_ns=1,
    )
    return ApprovedOrder(intent=intent, size=D(size), approved_ns=1, sequence=1)


def test_live_needs_the_flag_the_env_the_mode_and_a_wallet(tmp_path: Path) -> None:
    with pytest.raises(LiveRefusedError) as refused:
        require_live(False, False, CONFIG, None)
    for missing in ("--live", "PETS_LIVE", "trading.mode: live", "PETS_PRIVATE_KEY"):
        assert missing in str(refused.value)
    with pytest.raises(LiveRefusedError, match="--live flag") as only_flag:
        require_live(False, True, LIVE_CONFIG, WALLET)
    assert "PETS_LIVE" not in str(only_flag.value)
    assert require_live(True, True, LIVE_CONFIG, WALLET) is WALLET
    assert SECRET not in repr(WALLET) and TEST_KEY not in repr(WALLET)
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"PETS_PRIVATE_KEY={TEST_KEY}\nPETS_CLOB_API_KEY=k\nPETS_CLOB_SECRET='s'\n")
    assert wallet_from_env({}, secrets) is None  # no passphrase
    wallet = wallet_from_env({"PETS_CLOB_PASSPHRASE": "p", "PETS_SIGNATURE_TYPE": "2"}, secrets)
    assert wallet is not None and (wallet.api_secret, wallet.signature_type) == ("s", 2)


def test_orders_cancels_halt_and_heartbeat_through_the_real_client(clob: LocalClob) -> None:
    exchange = LiveExchange(f"http://127.0.0.1:{clob.server_port}", WALLET)
    [ack] = exchange.on_order(approved("a"), 1_000)
    assert ack.kind == "ack" and ack.venue_order_id in clob.orders and ack.leaves_qty == D(10)
    posted = clob.orders[ack.venue_order_id]
    order = posted["order"]
    assert (posted["orderType"], posted["postOnly"], posted["owner"]) == ("GTC", True, "test-api-key")
    # a BUY gives 10 x 0.45 = 4.5 pUSD (6 decimals) and takes 10 shares
    assert (order["side"], int(order["makerAmount"]), int(order["takerAmount"])) == (
        "BUY",
        4_500_000,
        10_000_000,
    )
    assert order["tokenId"] == "1234" and len(order["signature"]) == 132

    [rejected] = exchange.on_order(approved("b", asset="999"), 1_001)
    assert rejected.kind == "reject" and "not enough balance" in (rejected.reason or "")

    replace = approved("c", price="0.44", action="replace", replaces="a")
    cancel, new_ack = exchange.on_order(replace, 1_002)
    assert (cancel.client_order_id, cancel.kind, new_ack.kind) == ("a", "cancel", "ack")
    assert ack.venue_order_id not in clob.orders and new_ack.venue_order_id in clob.orders

    [refused] = exchange.on_order(approved("d", action="cancel", replaces="a"), 1_003)
    assert refused.kind == "reject" and "not open" in (refused.reason or "")

    exchange.on_order(approved("e", side="SELL", price="0.55"), 1_004)
    halt = approved("risk-cancel-all-1", action="cancel_all", bot="*")
    cancels = exchange.on_order(halt, 1_005)
    assert sorted((r.client_order_id, r.kind) for r in cancels) == [("c", "cancel"), ("e", "cancel")]
    assert clob.orders == {} and exchange.open == {}

    assert exchange.heartbeat() == "hb-1" and exchange.heartbeat() == "hb-2"
    beats = [body for method, path, _, body in clob.requests if path == "/v1/heartbeats"]
    assert beats == [{"heartbeat_id": ""}, {"heartbeat_id": "hb-1"}]  # each heartbeat chains the last id


def test_a_wrong_api_secret_is_refused_by_the_venue(clob: LocalClob) -> None:
    wrong = Wallet(
        private_key=TEST_KEY,
        api_key="test-api-key",
        api_secret=base64.urlsafe_b64encode(b"x" * 32).decode(),
        api_passphrase="pass",
    )
    [report] = LiveExchange(f"http://127.0.0.1:{clob.server_port}", wrong).on_order(approved("a"), 1)
    assert report.kind == "reject" and "HTTP 401" in (report.reason or "")
