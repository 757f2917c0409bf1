"""The Polymarket exchange contracts on Polygon (VENUE.md "Chain"): one row per exchange version, so a
later version is one more row. V1 and V2 differ in their `OrderFilled` layout (`layout`)."""

from __future__ import annotations

from typing import Literal, NamedTuple

from eth_hash.auto import keccak

from pets.schemas.signals import Exchange

V2_FROM_BLOCK = 86_126_998  # the CLOB V2 cutover (2026-04-28)

Layout = Literal["v1", "v2"]


def topic0(signature: str) -> str:
    return "0x" + keccak(signature.encode()).hex()


ORDER_FILLED: dict[Layout, str] = {
    "v1": topic0("OrderFilled(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)"),
    "v2": topic0(
        "OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32)"
    ),
}
ORDERS_MATCHED: dict[Layout, str] = {
    "v1": topic0("OrdersMatched(bytes32,address,uint256,uint256,uint256,uint256)"),
    "v2": topic0("OrdersMatched(bytes32,address,uint8,uint256,uint256,uint256)"),
}


class ExchangeContract(NamedTuple):
    name: Exchange
    address: str  # lower case
    layout: Layout
    neg_risk: bool
    from_block: int  # the first block whose logs we read from it
    to_block: int | None  # the last one (None: still current)


EXCHANGES: tuple[ExchangeContract, ...] = (
    ExchangeContract(
        "ctf_v1", "0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e", "v1", False, 33_605_403, V2_FROM_BLOCK - 1
    ),
    ExchangeContract(
        "negrisk_v1", "0xc5d563a36ae78145c45a50134d48a1215220f80a", "v1", True, 50_505_492, V2_FROM_BLOCK - 1
    ),
    ExchangeContract(
        "ctf_v2", "0xe111180000d2663c0091e4f400237545b87b996b", "v2", False, V2_FROM_BLOCK, None
    ),
    ExchangeContract(
        "negrisk_v2", "0xe2222d279d744050d28e00520010520000310f59", "v2", True, V2_FROM_BLOCK, None
    ),
)
BY_ADDRESS: dict[str, ExchangeContract] = {e.address: e for e in EXCHANGES}


def active(from_block: int, to_block: int) -> list[ExchangeContract]:
    """The exchanges whose logs a poll of [from_block, to_block] must read."""
    return [
        e for e in EXCHANGES if e.from_block <= to_block and (e.to_block is None or e.to_block >= from_block)
    ]
