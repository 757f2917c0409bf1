"""Run by tests/native/test_native.py in a subprocess, compiled or pure (PETS_NATIVE):

    python snapshot_harness.py dump FILE   # trade a while on the simulator, snapshot the state to FILE
    python snapshot_harness.py load FILE   # restore FILE's snapshot; exit 1 unless it is the same state

The state is what the flows snapshot (bots, risk engine, market state, paper exchange and portfolio),
through `pets.flows.recovery.freeze`/`thaw`; "the same" compares every attribute, recursively."""

from __future__ import annotations

import pickle
import sys
from array import array
from pathlib import Path
from typing import Any

from pets import native
from pets.flows.recovery import freeze, thaw
from pets.runtime import sources
from pets.runtime.loop import TradingLoop
from pets.schemas.config import load_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
VENUE_SECONDS = 240  # of the simulator: bots hold orders, positions and baskets by then
SNAPSHOT_CLASSES = native.snapshot_classes()


def canonical(value: Any) -> Any:
    """`value` as builtins (and the values' own types: Decimal, msgspec structs, enums), the same
    whether the classes that held it were compiled or not."""
    cls = type(value)
    if cls in SNAPSHOT_CLASSES or (cls.__module__.startswith("pets.") and cls.__eq__ is object.__eq__):
        return [cls.__qualname__, canonical(native.state_of(value))]  # by state, not identity
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple | array):
        return [canonical(item) for item in value]
    return value


def trading_state() -> dict[str, Any]:
    config = load_config(CONFIG_DIR)
    source = sources.simulated(config)
    loop = TradingLoop(config, source.markets)
    for raw in source.frames:
        loop.on_frame(raw)
        if loop.clock_ms - loop.stats.first_ms > VENUE_SECONDS * 1000:
            break
    assert any(bot.orders or bot.inventory for bot in loop.bots), "no bot holds anything to snapshot"
    return {
        "bots": loop.bots,
        "risk": loop.risk,
        "market_state": loop.market_state,
        "exchange": loop.exchange,
    }


def main(command: str, file: Path) -> int:
    if command == "dump":
        state = trading_state()
        file.write_bytes(pickle.dumps({"frozen": freeze(state), "canonical": canonical(state)}))
        return 0
    saved = pickle.loads(file.read_bytes())
    restored = canonical(thaw(saved["frozen"]))
    difference = first_difference(saved["canonical"], restored)
    if difference is not None:
        print(f"the restored state differs at {difference}", file=sys.stderr)
        return 1
    return 0


def first_difference(saved: Any, restored: Any, path: str = "state") -> str | None:
    if isinstance(saved, dict) and isinstance(restored, dict):
        if saved.keys() != restored.keys():
            return f"{path}: keys {sorted(map(str, saved.keys() ^ restored.keys()))[:5]}"
        found = (first_difference(saved[key], restored[key], f"{path}[{key!r}]") for key in saved)
        return next((where for where in found if where is not None), None)
    if isinstance(saved, list) and isinstance(restored, list) and len(saved) == len(restored):
        found = (
            first_difference(a, b, f"{path}[{i}]")
            for i, (a, b) in enumerate(zip(saved, restored, strict=True))
        )
        return next((where for where in found if where is not None), None)
    return None if saved == restored else f"{path}: {saved!r:.120} != {restored!r:.120}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
