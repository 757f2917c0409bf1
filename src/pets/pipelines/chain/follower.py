"""The chain pipeline: poll `eth_getLogs` of the Polymarket exchanges (web3.py), decode `OrderFilled`
logs into WalletFills, publish them on chain.fill (keyed by token), bad logs on dlq.signals.

- Watermark: the last block whose fills are all published, stored in a file (`WatermarkStore`). By
  default only `finalized` blocks are read (Polygon's finality is deterministic: no reorg below it).
  With `confirmations="latest"` the blocks above the finalized one are read too and their fills go out
  with `confirmed=False`; when a later poll finds such a fill gone from its block (a reorg), its
  retraction (`retracted=True`, same tx hash and log index) goes out. The watermark still only moves
  over finalized blocks.
- Idempotent on (tx hash, log index): a fill is published once. After a restart the keys already on
  chain.fill since the watermark's block time are read back from the topic (messages are stamped with
  their block time), so a range re-polled after a crash in its middle publishes only what is missing.
- Ranges adapt: start at `max_range` blocks; "too many results"/"range too large", HTTP 429 and
  timeouts halve the range (down to one block) and back off exponentially; successes double it again.
- Tokens: a fill whose token is not in the market universe yet waits (re-checked every poll) up to
  `universe_wait_s`, then goes to the dead-letter topic with the reason. No universe: no check.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec

from pets.pipelines.chain.decode import Undecodable, as_hex, as_int, decode_log
from pets.pipelines.chain.exchanges import ORDER_FILLED, ORDERS_MATCHED, active
from pets.schemas.control import DeadLetter
from pets.schemas.signals import WalletFill

log = logging.getLogger(__name__)

SOURCE = "chain"
Confirmations = Literal["finalized", "latest"]
TOPIC0 = sorted({*ORDER_FILLED.values(), *ORDERS_MATCHED.values()})


class RangeTooLarge(Exception):
    """The node refused the block range (too many results, range limit)."""


class Throttled(Exception):
    """HTTP 429, a timeout or a dropped connection: back off and retry a smaller range."""


class LogSource(Protocol):
    def heads(self) -> tuple[int, int]: ...  # (finalized, latest) block numbers
    def block(self, number: int) -> tuple[str, int]: ...  # (hash, unix seconds)
    def logs(self, lo: int, hi: int, addresses: list[str]) -> list[dict[str, Any]]: ...


class FillSink(Protocol):
    def published_since(self, ts_ms: int) -> dict[str, int]: ...  # "tx:log index" -> block
    def send(self, fill: WalletFill) -> object: ...
    def dead_letter(self, letter: DeadLetter) -> None: ...
    def flush(self) -> None: ...


_RANGE_WORDS = ("more than", "too large", "range", "limit", "exceed", "too many")


class Web3LogSource:
    """The node through web3.py's HTTP provider (its own retries off: the follower backs off itself)."""

    def __init__(
        self, url: str, timeout_s: float = 10.0, observe: Callable[[str, float, bool], None] | None = None
    ) -> None:
        from web3 import Web3

        self.w3 = Web3(
            Web3.HTTPProvider(url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None)
        )
        self.observe = observe  # (method, seconds, failed) of each request: the flow's metrics

    def _call(self, method: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        failed = True
        try:
            result = self._request(fn)
            failed = False
            return result
        finally:
            if self.observe is not None:
                self.observe(method, time.perf_counter() - start, failed)

    def _request(self, fn: Callable[[], Any]) -> Any:
        import requests
        from web3.exceptions import TimeExhausted, TooManyRequests, Web3RPCError

        try:
            return fn()
        except Web3RPCError as exc:
            message = str(exc).lower()
            if any(word in message for word in _RANGE_WORDS):
                raise RangeTooLarge(str(exc)) from exc
            raise Throttled(f"node error: {exc}") from exc
        except (TooManyRequests, TimeExhausted, requests.RequestException) as exc:
            raise Throttled(f"{type(exc).__name__}: {exc}") from exc

    def heads(self) -> tuple[int, int]:
        finalized = self._call("eth_getBlockByNumber", lambda: self.w3.eth.get_block("finalized"))
        latest = self._call("eth_blockNumber", lambda: self.w3.eth.block_number)
        return int(finalized["number"]), int(latest)

    def block(self, number: int) -> tuple[str, int]:
        block = self._call("eth_getBlockByNumber", lambda: self.w3.eth.get_block(number))
        return as_hex(block["hash"]), int(block["timestamp"])

    def logs(self, lo: int, hi: int, addresses: list[str]) -> list[dict[str, Any]]:
        from web3 import Web3

        query = {
            "fromBlock": lo,
            "toBlock": hi,
            "address": [Web3.to_checksum_address(a) for a in addresses],
            "topics": [TOPIC0],
        }
        raw = self._call("eth_getLogs", lambda: self.w3.eth.get_logs(query))  # type: ignore[arg-type]
        return [
            {
                "address": as_hex(entry["address"]),
                "topics": [as_hex(t) for t in entry["topics"]],
                "data": as_hex(entry["data"]),
                "blockNumber": int(entry["blockNumber"]),
                "blockHash": as_hex(entry["blockHash"]),
                "transactionHash": as_hex(entry["transactionHash"]),
                "logIndex": int(entry["logIndex"]),
            }
            for entry in raw
        ]


class WatermarkStore:
    """The last block whose fills are all published, in a small JSON file (atomic replace)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> int | None:
        try:
            return int(json.loads(self.path.read_text())["watermark"])
        except FileNotFoundError:
            return None

    def save(self, block: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"watermark": block}))
        os.replace(tmp, self.path)


@dataclass
class FollowStats:
    polls: int = 0
    logs: int = 0
    published: int = 0
    unconfirmed: int = 0
    retracted: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    range_errors: int = 0
    throttled: int = 0
    waiting: int = 0  # fills waiting for their token to enter the universe
    watermark: int | None = None
    latency_ms_total: int = 0  # block time -> published, summed over the fills published
    latency_ms_max: int = 0

    @property
    def latency_ms_mean(self) -> float | None:
        return self.latency_ms_total / self.published if self.published else None


@dataclass
class _Pending:
    fill: WalletFill
    block_hash: str


class ChainFollower:
    def __init__(
        self,
        source: LogSource,
        sink: FillSink,
        store: WatermarkStore,
        *,
        confirmations: Confirmations = "finalized",
        start_block: int | None = None,
        max_range: int = 2_000,
        known_token: Callable[[str], bool] | None = None,
        universe_wait_s: float = 120.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.sink = sink
        self.store = store
        self.confirmations = confirmations
        self.max_range = max_range
        self.range = max_range
        self.known_token = known_token
        self.universe_wait_s = universe_wait_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.failures = 0
        self.clock = clock
        self.sleep = sleep
        self.stats = FollowStats()
        stored = store.load()
        self.watermark = (
            stored if stored is not None else (start_block - 1 if start_block is not None else None)
        )
        self.published: dict[str, int] = {}  # keys published above the watermark -> their block
        self.pending: dict[str, _Pending] = {}  # unconfirmed fills published (fast path)
        self.waiting: dict[str, tuple[float, WalletFill]] = {}  # key -> (first seen, fill) of unknown tokens
        self.block_times: dict[int, int] = {}
        self._recovered = False

    # ------------------------------------------------------------------ one poll

    def poll(self) -> int:
        """Read the next range; returns the number of fills published (retractions included)."""
        self.stats.polls += 1
        try:
            return self._poll()
        except RangeTooLarge as exc:
            self.stats.range_errors += 1
            return self._back_off(f"range refused ({exc})")
        except Throttled as exc:
            self.stats.throttled += 1
            return self._back_off(str(exc))

    def _poll(self) -> int:
        finalized, latest = self.source.heads()
        if self.watermark is None:
            self.watermark = finalized  # a first start without --from-block follows from now
        if not self._recovered:
            if self.store.load() is None:
                self.store.save(self.watermark)  # a restart resumes here, whatever it is told
            self._recover()
        target = latest if self.confirmations == "latest" else finalized
        lo = self.watermark + 1
        if lo > target:
            return self._release_waiting()
        hi = min(target, lo + self.range - 1)
        logs = self.source.logs(lo, hi, [e.address for e in active(lo, hi)])
        self.failures = 0
        self.range = min(self.max_range, self.range * 2)
        self.stats.logs += len(logs)
        sent = self._publish(logs, lo, hi, finalized)
        sent += self._release_waiting()
        self.sink.flush()
        done = min(hi, finalized)
        if self.waiting:  # a restart must read the blocks of the fills still waiting again
            done = min(done, min(f.block_number for _, f in self.waiting.values()) - 1)
        if done > self.watermark:
            self.watermark = done
            self.store.save(done)
            self.stats.watermark = done
            self.published = {k: b for k, b in self.published.items() if b > done}
        return sent

    def _back_off(self, why: str) -> int:
        self.range = max(1, self.range // 2)
        self.failures += 1
        pause = min(self.max_backoff_s, self.backoff_s * 2 ** (self.failures - 1))
        log.warning("chain: %s; range now %d blocks, retrying in %.1f s", why, self.range, pause)
        self.sleep(pause)
        return 0

    def _recover(self) -> None:
        """The keys already on chain.fill since the watermark's block (a crash in a range's middle)."""
        assert self.watermark is not None
        _, ts = self.source.block(self.watermark)
        self.published = self.sink.published_since(ts * 1000)
        self._recovered = True

    def _ts_ms(self, entry: Mapping[str, Any]) -> int:
        stamp = entry.get("blockTimestamp")
        if stamp is not None:
            return as_int(stamp) * 1000
        number = as_int(entry["blockNumber"])
        ts = self.block_times.get(number)
        if ts is None:
            _, ts = self.source.block(number)
            self.block_times[number] = ts
        return ts * 1000

    def _publish(self, logs: Iterable[dict[str, Any]], lo: int, hi: int, finalized: int) -> int:
        sent = 0
        present: set[str] = set()
        for entry in logs:
            out = decode_log(entry, self._ts_ms(entry))
            if out is None:
                continue
            if isinstance(out, Undecodable):
                self._dead(out.reason, entry)
                continue
            key = f"{out.tx_hash}:{out.log_index}"
            present.add(key)
            confirmed = out.block_number <= finalized
            pending = self.pending.get(key)
            if pending is not None:
                if confirmed:
                    del self.pending[key]  # finalized as published: nothing more to say
                continue
            if key in self.published:
                self.stats.duplicates += 1
                continue
            if key in self.waiting:
                continue  # `_release_waiting` decides
            if not confirmed:
                out = msgspec.structs.replace(out, confirmed=False)
            if self.known_token is not None and not self.known_token(out.asset_id):
                self.waiting.setdefault(key, (self.clock(), out))
                continue
            sent += self._send(key, out, str(entry.get("blockHash") or ""))
        # fast path: an unconfirmed fill of a re-read block that is no longer there was reorganised away
        for key, pending in list(self.pending.items()):
            if lo <= pending.fill.block_number <= hi and key not in present:
                del self.pending[key]
                self.sink.send(msgspec.structs.replace(pending.fill, retracted=True))
                self.stats.retracted += 1
                sent += 1
        self.stats.waiting = len(self.waiting)
        return sent

    def _send(self, key: str, fill: WalletFill, block_hash: str) -> int:
        self.sink.send(fill)
        self.published[key] = fill.block_number
        stats = self.stats
        stats.published += 1
        latency = time.time_ns() // 1_000_000 - fill.ts_ms
        stats.latency_ms_total += latency
        stats.latency_ms_max = max(stats.latency_ms_max, latency)
        if not fill.confirmed:
            self.pending[key] = _Pending(fill, block_hash)
            self.stats.unconfirmed += 1
        return 1

    def _release_waiting(self) -> int:
        """Waiting fills whose token is known now go out; those waiting too long are dead-lettered."""
        sent = 0
        now = self.clock()
        for key, (since, fill) in list(self.waiting.items()):
            if self.known_token is not None and self.known_token(fill.asset_id):
                del self.waiting[key]
                sent += self._send(key, fill, "")
            elif now - since >= self.universe_wait_s:
                del self.waiting[key]
                reason = f"token {fill.asset_id} not in the market universe after {self.universe_wait_s:g} s"
                self._dead(reason, msgspec.to_builtins(fill), key=fill.asset_id)
        self.stats.waiting = len(self.waiting)
        return sent

    def _dead(self, reason: str, raw: Mapping[str, Any], key: str | None = None) -> None:
        payload = json.dumps(raw, default=str).encode()
        letter = DeadLetter.from_bytes(SOURCE, reason, payload, ts_ns=time.time_ns(), key=key)
        self.sink.dead_letter(letter)
        self.stats.dead_letters += 1
        log.warning("chain: dead letter: %s", reason)

    # ------------------------------------------------------------------ the service

    def run(self, stop: Callable[[], bool], idle_s: float = 1.0) -> FollowStats:
        """Poll until `stop()`: back to back while behind, every `idle_s` once caught up."""
        while not stop():
            behind = self.poll() > 0 or self._behind()
            if not behind:
                self.sleep(idle_s)
        self.sink.flush()
        return self.stats

    def _behind(self) -> bool:
        """More finalized blocks than one range to read (the fast path re-reads its tail every poll)."""
        finalized, _ = self.source.heads()
        return self.watermark is not None and self.watermark < finalized and not self.waiting
