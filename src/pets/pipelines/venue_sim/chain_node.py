"""A local Polygon JSON-RPC node for tests: `eth_chainId`, `eth_blockNumber`, `eth_getBlockByNumber`
(numbers and the tags `latest`, `safe`, `finalized`, `earliest`) and `eth_getLogs` (block range,
address list, topic-0 list), over HTTP so that web3.py talks to it as to a real provider.

    node = ChainNode(logs, head=90_000_100, finalized=90_000_050).start()
    Web3(Web3.HTTPProvider(node.url)).eth.get_logs({...})

Blocks are made up: block n is timestamped `t_v2 + (n - V2_FROM_BLOCK) x 2 s` (Polygon's pace,
anchored by default at the V2 cutover; a test may anchor it so that its blocks are recent) and hashed
from its number and its fork generation. Logs are served as given (the
real logs of ../shared/data/chain/logs/ or logs built by `order_filled_log` from real trades) with the
current hash of their block. Test hooks, each a behaviour of real providers:
- `max_range` / `max_results`: a larger query is refused with the error public providers send
  ("block range too large", -32005 "query returned more than N results");
- `inject(status, count)`: the next `count` HTTP requests answer `status` (429 with Retry-After);
- `delay(seconds, count)`: the next `count` requests stall (a client timeout);
- `reorg(from_block, drop=..., add=...)`: every block from `from_block` gets a new hash; logs can
  vanish from the new fork and others appear;
- `advance(head, finalized)`: the chain grows; `requests` lists every JSON-RPC method served.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any

from eth_abi import encode

from pets.pipelines.chain.exchanges import BY_ADDRESS, ORDER_FILLED, V2_FROM_BLOCK
from pets.pipelines.venue_sim.serving import HttpServer

CHAIN_ID = 137
T_V2 = 1_777_377_600  # 2026-04-28T12:00:00Z: about when block V2_FROM_BLOCK was mined
BLOCK_S = 2


def block_time(number: int, t_v2: int = T_V2) -> int:
    """When the made-up block `number` was mined (unix s), with block V2_FROM_BLOCK at `t_v2`."""
    return t_v2 + (number - V2_FROM_BLOCK) * BLOCK_S


def block_at(ts_s: int) -> int:
    """The made-up block mined at (or just before) unix time `ts_s`."""
    return V2_FROM_BLOCK + (ts_s - T_V2) // BLOCK_S


def _word(value: int) -> str:
    return "0x" + format(value, "064x")


def order_filled_log(
    exchange: str,
    *,
    maker: str,
    taker: str,
    side: str,
    token_id: int,
    shares_units: int,
    usdc_units: int,
    fee_units: int,
    tx_hash: str,
    log_index: int,
    block: int,
    order_hash: bytes = b"\x01" * 32,
) -> dict[str, Any]:
    """An `OrderFilled` log of `exchange` (an address of exchanges.EXCHANGES) encoded with eth_abi as
    the contract emits it (amounts in 6-decimal units; the maker's `side`)."""
    contract = BY_ADDRESS[exchange.lower()]
    buy = side == "BUY"
    maker_amount, taker_amount = (usdc_units, shares_units) if buy else (shares_units, usdc_units)
    if contract.layout == "v1":
        maker_asset, taker_asset = (0, token_id) if buy else (token_id, 0)
        data = encode(["uint256"] * 5, [maker_asset, taker_asset, maker_amount, taker_amount, fee_units])
    else:
        data = encode(
            ["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"],
            [0 if buy else 1, token_id, maker_amount, taker_amount, fee_units, b"\x00" * 32, b"\x00" * 32],
        )
    return {
        "address": contract.address,
        "topics": [
            ORDER_FILLED[contract.layout],
            "0x" + order_hash.hex(),
            _word(int(maker, 16)),
            _word(int(taker, 16)),
        ],
        "data": "0x" + data.hex(),
        "blockNumber": hex(block),
        "transactionHash": tx_hash,
        "transactionIndex": "0x0",
        "logIndex": hex(log_index),
        "removed": False,
    }


def trade_log(
    row: Mapping[str, Any], *, block: int, log_index: int, exchange: str, token_id: int, counterparty: str
) -> dict[str, Any]:
    """The `OrderFilled` of one real Data-API trade (wallet, side, size, price, transaction hash): the
    fill of the wallet's order, amounts rounded to the 6-decimal units the chain carries."""
    shares = int(Decimal(str(row["size"])) * 10**6)
    usdc = int((Decimal(shares) * Decimal(str(row["price"]))).to_integral_value())
    return order_filled_log(
        exchange, maker=row["wallet"], taker=counterparty, side=row["side"], token_id=token_id,
        shares_units=shares, usdc_units=usdc, fee_units=0, tx_hash=row["tx"], log_index=log_index,
        block=block,
    )  # fmt: skip


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _quantity(value: Any) -> int:
    return value if isinstance(value, int) else int(value, 16)


class ChainNode(HttpServer):
    def __init__(
        self,
        logs: Iterable[Mapping[str, Any]] = (),
        *,
        head: int,
        finalized: int,
        max_range: int | None = None,
        max_results: int | None = None,
        t_v2: int = T_V2,
        host: str = "127.0.0.1",
    ) -> None:
        self.t_v2 = t_v2  # when block V2_FROM_BLOCK was mined: moves every block time
        self.head = head
        self.finalized = finalized
        self.max_range = max_range
        self.max_results = max_results
        self.logs: list[dict[str, Any]] = [dict(log) for log in logs]
        self.generation: dict[int, int] = {}  # block -> fork generation (0 when never reorganised)
        self.requests: list[str] = []
        self._faults: list[tuple[int, float]] = []  # (HTTP status or 0 for a stall, seconds)
        self._lock = threading.Lock()
        super().__init__(host, self._handler())

    # ------------------------------------------------------------------ test hooks

    def add_logs(self, logs: Iterable[Mapping[str, Any]]) -> None:
        with self._lock:
            self.logs.extend(dict(log) for log in logs)

    def advance(self, head: int, finalized: int | None = None) -> None:
        with self._lock:
            self.head = head
            if finalized is not None:
                self.finalized = finalized

    def inject(self, status: int, count: int = 1) -> None:
        with self._lock:
            self._faults.extend([(status, 0.0)] * count)

    def delay(self, seconds: float, count: int = 1) -> None:
        with self._lock:
            self._faults.extend([(0, seconds)] * count)

    def reorg(
        self, from_block: int, drop: Sequence[tuple[str, int]] = (), add: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        """New hashes for every block from `from_block` up to the head; the logs keyed (tx hash, log
        index) in `drop` are not on the new fork, those in `add` are."""
        with self._lock:
            if from_block <= self.finalized:
                raise ValueError(f"block {from_block} is finalized: Polygon does not reorganise it")
            for n in range(from_block, self.head + 1):
                self.generation[n] = self.generation.get(n, 0) + 1
            gone = set(drop)
            self.logs = [
                log for log in self.logs
                if (log["transactionHash"], _quantity(log["logIndex"])) not in gone
            ]  # fmt: skip
            self.logs.extend(dict(log) for log in add)

    def block_hash(self, number: int) -> str:
        seed = f"{number}|{self.generation.get(number, 0)}".encode()
        return "0x" + hashlib.sha256(seed).hexdigest()

    # ------------------------------------------------------------------ JSON-RPC

    def _block_number(self, tag: Any) -> int | None:
        if tag in ("latest", "pending"):
            return self.head
        if tag in ("finalized", "safe"):
            return self.finalized
        if tag == "earliest":
            return 0
        number = _quantity(tag)
        return number if number <= self.head else None

    def _block(self, tag: Any) -> dict[str, Any] | None:
        number = self._block_number(tag)
        if number is None:
            return None
        return {
            "number": hex(number),
            "hash": self.block_hash(number),
            "parentHash": self.block_hash(number - 1),
            "timestamp": hex(block_time(number, self.t_v2)),
            "transactions": [],
        }

    def _get_logs(self, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        lo = self._block_number(query.get("fromBlock", "latest"))
        hi = self._block_number(query.get("toBlock", "latest"))
        if lo is None or hi is None:
            raise RpcError(-32000, "block range extends beyond current head block")
        if self.max_range is not None and hi - lo + 1 > self.max_range:
            raise RpcError(-32600, f"block range too large: {hi - lo + 1} > {self.max_range}")
        addresses = query.get("address")
        if isinstance(addresses, str):
            addresses = [addresses]
        wanted = {a.lower() for a in addresses} if addresses else None
        topics = query.get("topics") or []
        first = topics[0] if topics else None
        topic0 = {first} if isinstance(first, str) else set(first or ())
        out = []
        for log in self.logs:
            number = _quantity(log["blockNumber"])
            if not lo <= number <= hi or number > self.head:
                continue
            if wanted is not None and log["address"].lower() not in wanted:
                continue
            if topic0 and log["topics"][0] not in topic0:
                continue
            served = {k: v for k, v in log.items() if k not in ("name", "expected")}
            served["blockHash"] = self.block_hash(number)
            served["blockNumber"] = hex(number)
            served["logIndex"] = hex(_quantity(log["logIndex"]))
            out.append(served)
        if self.max_results is not None and len(out) > self.max_results:
            raise RpcError(-32005, f"query returned more than {self.max_results} results")
        out.sort(key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
        return out

    def call(self, method: str, params: list[Any]) -> Any:
        with self._lock:
            self.requests.append(method)
            if method == "eth_chainId":
                return hex(CHAIN_ID)
            if method == "eth_blockNumber":
                return hex(self.head)
            if method == "eth_getBlockByNumber":
                return self._block(params[0])
            if method == "eth_getLogs":
                return self._get_logs(params[0])
        raise RpcError(-32601, f"the method {method} does not exist/is not available")

    def _fault(self) -> tuple[int, float] | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: Mapping[str, str] = {}) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client timed out
                    self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fault = node._fault()
                if fault is not None:
                    status, stall = fault
                    if stall:
                        time.sleep(stall)
                    else:
                        self._send(status, b'{"error":"rate limited"}', {"Retry-After": "0"})
                        return
                request = json.loads(body)
                batch = isinstance(request, list)
                answers = [self._answer(r) for r in (request if batch else [request])]
                self._send(200, json.dumps(answers if batch else answers[0]).encode())

            def _answer(self, request: Mapping[str, Any]) -> dict[str, Any]:
                rid = request.get("id")
                try:
                    result = node.call(request["method"], list(request.get("params") or []))
                except RpcError as exc:
                    return {"jsonrpc": "2.0", "id": rid, "error": {"code": exc.code, "message": str(exc)}}
                return {"jsonrpc": "2.0", "id": rid, "result": result}

        return Handler
