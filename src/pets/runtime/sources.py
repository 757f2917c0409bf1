"""Where the main job's frames come from: the simulator, or recordings (`pets run --replay`).

Recordings are the l2 format of data/polymarket/l2 (pets.pipelines.polymarket.recording): JSON
lines of market-channel events, gzip by suffix. Their market universe and their frames merged by
venue timestamp come from `pets.pipelines.polymarket.replayer.recordings`, the same as
`pets replay --to kafka` publishes (md.markets, then md.book).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pets.pipelines.polymarket.replayer import recordings
from pets.pipelines.simulator import MarketSimulator, SimParams
from pets.schemas.config import PetsConfig
from pets.schemas.market_data import MarketInfo


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
    replayed = recordings(paths)
    names = ", ".join(p.name for p in paths[:3]) + (f" (+{len(paths) - 3})" if len(paths) > 3 else "")
    frames = (frame.payload for frame in replayed.frames())
    return Source(f"replay of {names}", replayed.markets, frames, replayed.resolutions)
