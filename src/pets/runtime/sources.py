"""Where the main job's frames come from: the simulator, or recordings (`pets run --replay`).

Recordings are the l2 format of data/polymarket/l2 (pets.pipelines.polymarket.recording): JSON
lines of market-channel events, gzip by suffix. Their market universe and their frames merged by
venue timestamp come from `pets.pipelines.polymarket.replayer.recordings`, the same as
`pets replay --to kafka` publishes (md.markets, then md.book).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pets.pipelines.polymarket.recording import TruncatedRecording
from pets.pipelines.polymarket.replayer import recordings
from pets.pipelines.simulator import AltEvent, MarketSimulator, SimParams
from pets.schemas.config import PetsConfig
from pets.schemas.market_data import MarketInfo


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    markets: list[MarketInfo]
    frames: Iterator[bytes]
    # the same frames with the alternative data (signals, whale fills, rankings) among them, from a fresh run
    events: Callable[[], Iterator[bytes | AltEvent]] | None = None
    # why input was lost while reading (a truncated recording ends early): filled as `frames` is read
    faults: list[str] = field(default_factory=list)


def simulated(config: PetsConfig, *, seed: int | None = None, duration_s: float | None = None) -> Source:
    overrides: dict[str, object] = {}
    if seed is not None:
        overrides["seed"] = seed
    if duration_s is not None:
        overrides["duration_ms"] = int(duration_s * 1000)
    params = SimParams.from_config(config.system.simulator, **overrides)
    sim = MarketSimulator(params)
    return Source(
        f"simulator seed {params.seed}, {params.duration_ms / 1000:g} s", sim.markets, sim.frames(),
        events=lambda: MarketSimulator(params).events(),
    )


def replay(paths: Sequence[Path]) -> Source:
    """The frames of every recording merged by venue time, with the markets they trade."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"recording(s) not found: {', '.join(missing)}")
    replayed = recordings(paths)
    names = ", ".join(p.name for p in paths[:3]) + (f" (+{len(paths) - 3})" if len(paths) > 3 else "")
    faults: list[str] = []

    def on_truncated(exc: TruncatedRecording) -> None:
        reason = str(exc)
        for path in paths:  # the reason leads, not the folders
            reason = reason.replace(str(path), path.name)
        faults.append(reason)

    # the Gamma resolutions follow as market_resolved frames, as `pets replay --to kafka` sends them
    frames = (frame.payload for frame in replayed.frames(on_truncated, resolved=True))
    return Source(f"replay of {names}", replayed.markets, frames, faults=faults)
