"""Where the main job's frames come from: the simulator, or recordings (`pets run --replay`).

Recordings are the l2 format of data/polymarket/l2 (pets.pipelines.polymarket.recording): JSON
lines of market-channel events, gzip by suffix. Several files are merged by venue timestamp. The
market universe comes from each file's `<name>.meta.json` when present (token ids, Gamma id, slug,
and `settled_winner_asset_id`: the Gamma state that the market resolved, applied after the last
frame); otherwise a binary market is inferred from the first two tokens seen under one `market`.
Some recordings carry an empty `market` ("market":""): their frames get the recording's market id
(the Gamma id, else the slug), so two such files never merge into one market.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import msgspec

from pets.pipelines.polymarket.recording import read_recording
from pets.pipelines.simulator import MarketSimulator, SimParams
from pets.schemas.config import PetsConfig
from pets.schemas.market_data import MarketInfo

REPLAY_CATEGORY = "sports"  # the shared recordings are MLB money lines
_SCAN_FRAMES = 500
_EMPTY_MARKET = b'"market":""'


class _Head(msgspec.Struct):
    timestamp: str | int | None = None
    market: str | None = None
    asset_id: str | None = None


_HEAD = msgspec.json.Decoder(_Head)


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    markets: list[MarketInfo]
    frames: Iterator[bytes]
    resolutions: list[MarketInfo]  # applied after the last frame (Gamma state of a replay)


def simulated(config: PetsConfig, *, seed: int | None = None, duration_s: float | None = None) -> Source:
    overrides: dict[str, object] = {}
    if seed is not None:
        overrides["seed"] = seed
    if duration_s is not None:
        overrides["duration_ms"] = int(duration_s * 1000)
    params = SimParams.from_config(config.system.simulator, **overrides)
    sim = MarketSimulator(params)
    return Source(
        f"simulator seed {params.seed}, {params.duration_ms / 1000:g} s", sim.markets, sim.frames(), []
    )


def replay(paths: Sequence[Path]) -> Source:
    """The frames of every recording merged by venue time, with the markets they trade."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"recording(s) not found: {', '.join(missing)}")
    markets: list[MarketInfo] = []
    resolutions: list[MarketInfo] = []
    market_ids: list[str | None] = []
    for path in paths:
        info, winner = _market_of(path)
        market_ids.append(None if info is None else info.condition_id)
        if info is None:
            continue
        markets.append(info)
        if winner is not None:
            resolutions.append(
                msgspec.structs.replace(
                    info,
                    closed=True,
                    accepting_orders=False,
                    active=False,
                    winning_asset_id=winner,
                    outcome_prices=tuple(Decimal(1) if t == winner else Decimal(0) for t in info.token_ids),
                )
            )
    frames = heapq.merge(
        *(_timed(p, m) for p, m in zip(paths, market_ids, strict=True)), key=lambda item: item[0]
    )
    names = ", ".join(p.name for p in paths[:3]) + (f" (+{len(paths) - 3})" if len(paths) > 3 else "")
    return Source(f"replay of {names}", markets, (payload for _, payload in frames), resolutions)


def _timed(path: Path, market_id: str | None) -> Iterator[tuple[int, bytes]]:
    """(venue ms, frame) of one recording; an empty `market` becomes the recording's market id."""
    last = 0
    named = b'"market":"' + market_id.encode() + b'"' if market_id else None
    for frame in read_recording(path):
        payload = frame.payload
        try:
            ts = _HEAD.decode(payload).timestamp
            last = int(ts) if ts is not None else last
        except (msgspec.DecodeError, ValueError):
            pass  # a malformed line keeps its place; the parser dead-letters it
        if named is not None and _EMPTY_MARKET in payload:
            payload = payload.replace(_EMPTY_MARKET, named, 1)
        yield last, payload


def _meta_path(path: Path) -> Path:
    name = path.name
    for suffix in (".jsonl.gz", ".jsonl", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + ".meta.json")


def _market_of(path: Path) -> tuple[MarketInfo | None, str | None]:
    """The recording's market (from its meta file, else from its first frames) and the settled winner."""
    meta_path = _meta_path(path)
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    market_id = meta.get("gamma_market_id") or meta.get("slug")
    tokens = tuple(meta.get("asset_ids") or ())
    if not market_id or len(tokens) != 2:
        market_id, tokens = _scan(path)
    if market_id is None:
        return None, None
    outcome_names = meta.get("outcome_names") or {}
    outcomes = tuple(outcome_names.get(t, f"outcome {i}") for i, t in enumerate(tokens))
    slug = meta.get("slug") or path.stem
    info = MarketInfo(
        condition_id=market_id,
        market_id=market_id,
        question=slug,
        slug=slug,
        category=REPLAY_CATEGORY,
        token_ids=tokens,
        outcomes=outcomes,
        neg_risk=False,
        tick_size=Decimal("0.01"),
        min_order_size=Decimal(5),
        active=True,
        closed=False,
        accepting_orders=True,
    )
    return info, meta.get("settled_winner_asset_id")


def _scan(path: Path) -> tuple[str | None, tuple[str, ...]]:
    market: str | None = None
    tokens: list[str] = []
    for n, frame in enumerate(read_recording(path)):
        if n >= _SCAN_FRAMES or len(tokens) == 2:
            break
        try:
            head = _HEAD.decode(frame.payload)
        except msgspec.DecodeError:
            continue
        if head.asset_id and (market is None or head.market == market):
            market = head.market
            if head.asset_id not in tokens:
                tokens.append(head.asset_id)
    if len(tokens) != 2 or market is None:
        return None, ()
    return market or path.name.split(".")[0], tuple(tokens)
