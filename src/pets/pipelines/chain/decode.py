"""`OrderFilled` logs of the Polymarket exchanges -> `WalletFill`s, in exact decimals.

The counting rule (VENUE.md "Fills on chain"): `matchOrders` emits one `OrderFilled` per maker order,
one more for the taker's own order (its `taker` is the exchange contract) and an `OrdersMatched`.
Every `OrderFilled` is one fill of its `maker` (the wallet whose order filled) with `taker` as the
counterparty, so per wallet each fill appears exactly once; `OrdersMatched` is not a fill. One trade
thus shows up from both sides: the taker's own-order fill repeats the volume of the maker fills it
matched, so trade volume counts only the fills whose counterparty is not an exchange
(`counts_volume`). Amounts are 6-decimal integers (pUSD and shares alike); asset id 0 is pUSD in V1.
The decoder slices the hex by hand (no ABI machinery): it is the pipeline's hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from pets.pipelines.chain.exchanges import BY_ADDRESS, ORDER_FILLED, ORDERS_MATCHED
from pets.schemas.signals import WalletFill

PRICE_STEP = Decimal("0.000001")
_WORD = 64
_V1_FILLED, _V2_FILLED = ORDER_FILLED["v1"], ORDER_FILLED["v2"]
_MATCHED = frozenset(ORDERS_MATCHED.values())


class Undecodable(NamedTuple):
    """A log that is no fill of a known exchange, with the reason (dead-lettered by the pipeline)."""

    reason: str


def as_int(value: Any) -> int:
    """A JSON-RPC quantity: hex string or int."""
    return value if isinstance(value, int) else int(value, 16)


def as_hex(value: Any) -> str:
    """A JSON-RPC data field: a hex string or bytes (web3's HexBytes), as lower-case 0x hex."""
    if isinstance(value, bytes | bytearray):
        return "0x" + value.hex()
    return str(value).lower()


def _address(topic: str) -> str:
    return "0x" + topic[-40:]


def _amount(units: int) -> Decimal:
    return Decimal(units).scaleb(-6)


def decode_log(log: Mapping[str, Any], ts_ms: int | None = None) -> WalletFill | Undecodable | None:
    """One log -> the fill of its maker; None for an `OrdersMatched` (a match's summary, not a fill).
    `ts_ms`: the block time, else the log's `blockTimestamp`, else 0."""
    try:
        exchange = BY_ADDRESS.get(as_hex(log["address"]))
        topics = [as_hex(t) for t in log["topics"]]
        if exchange is None:
            return Undecodable(f"not a Polymarket exchange: {log['address']}")
        if not topics:
            return Undecodable("log without topics")
        event = topics[0]
        if event in _MATCHED:
            return None
        expected = ORDER_FILLED[exchange.layout]
        if event != expected:
            known = event in (_V1_FILLED, _V2_FILLED)
            what = "OrderFilled of the other exchange version" if known else f"unknown event {event}"
            return Undecodable(f"{what} on {exchange.name} (expected {expected})")
        data = as_hex(log["data"])[2:]
        words = 7 if exchange.layout == "v2" else 5
        if len(topics) != 4 or len(data) != words * _WORD:
            return Undecodable(f"malformed OrderFilled: {len(topics)} topics, {len(data) // 2} data bytes")
        w = [int(data[i : i + _WORD], 16) for i in range(0, 5 * _WORD, _WORD)]
        if exchange.layout == "v1":
            maker_asset, taker_asset, maker_amount, taker_amount, fee = w
            if (maker_asset == 0) == (taker_asset == 0):
                return Undecodable(
                    f"V1 fill with asset ids {maker_asset}/{taker_asset}: exactly one must be 0"
                )
            buy = maker_asset == 0
            token = taker_asset if buy else maker_asset
        else:
            side, token, maker_amount, taker_amount, fee = w
            if side > 1:
                return Undecodable(f"V2 fill with side {side}")
            buy = side == 0
        usdc, shares = (maker_amount, taker_amount) if buy else (taker_amount, maker_amount)
        if shares == 0:
            return Undecodable("fill of zero shares")
        if ts_ms is None:
            stamp = log.get("blockTimestamp")
            ts_ms = as_int(stamp) * 1000 if stamp is not None else 0
        return WalletFill(
            tx_hash=as_hex(log["transactionHash"]),
            log_index=as_int(log["logIndex"]),
            block_number=as_int(log["blockNumber"]),
            exchange=exchange.name,
            wallet=_address(topics[2]),
            counterparty=_address(topics[3]),
            asset_id=str(token),
            side="BUY" if buy else "SELL",
            price=(Decimal(usdc) / Decimal(shares)).quantize(PRICE_STEP),
            shares=_amount(shares),
            usdc=_amount(usdc),
            fee=_amount(fee),
            ts_ms=ts_ms,
        )
    except (KeyError, TypeError, ValueError) as exc:
        return Undecodable(f"undecodable log: {type(exc).__name__}: {exc}")


def counts_volume(fill: WalletFill) -> bool:
    """Whether the fill's volume counts toward trade volume: not a taker's own-order fill, whose
    volume repeats that of the maker fills of the same match."""
    return fill.counterparty not in BY_ADDRESS


def trade_volume(fills: Iterable[WalletFill]) -> Decimal:
    """pUSD traded, each trade once."""
    return sum((f.usdc for f in fills if counts_volume(f)), Decimal(0))
