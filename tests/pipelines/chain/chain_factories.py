"""Logs for the chain pipeline's tests: the real V2 logs of ../shared/data/chain/logs/ and `OrderFilled`
logs encoded with the real ABI layout (eth_abi) from the real trades of one wallet's ledger
(../shared/data/trades/beffer45_wallet_ledger.json), placed in consecutive made-up blocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pets.pipelines.venue_sim.chain_node import trade_log

V2_CTF = "0xe111180000d2663c0091e4f400237545b87b996b"
COUNTERPARTY = "0x" + "cd" * 20
FIRST_BLOCK = 91_660_000  # a little before the real V2 logs (91,660,288 and 91,660,624)


def real_v2_logs(shared_data: Path) -> list[dict[str, Any]]:
    return json.loads(
        (shared_data / "chain" / "logs" / "polyprinter_v2_ctf_orderfilled_logs.json").read_text()
    )


def ledger_logs(
    shared_data: Path, count: int, first_block: int = FIRST_BLOCK, every: int = 10
) -> list[dict[str, Any]]:
    """The first `count` trades of the ledger's wallet as the V2 CTF exchange's fills of its orders,
    one per block from `first_block`, `every` blocks apart."""
    ledger = json.loads((shared_data / "trades" / "beffer45_wallet_ledger.json").read_text())
    wallet = ledger["BEFFER45_WALLET"]
    out = []
    for i, trade in enumerate(ledger["BEFFER45_LEDGER_TRADES"][:count]):
        row = {**trade, "wallet": wallet, "tx": f"0x{i:02x}" + trade["tx"][4:]}  # one log per tx
        out.append(trade_log(row, block=first_block + i * every, log_index=i, exchange=V2_CTF,
                             token_id=int(trade["asset"]), counterparty=COUNTERPARTY))  # fmt: skip
    return out


def key(log: dict[str, Any]) -> str:
    index = log["logIndex"]
    return f"{log['transactionHash']}:{index if isinstance(index, int) else int(index, 16)}"
