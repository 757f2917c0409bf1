"""Probe of the flows' epoch closes during `pets bench loop-latency` (issue 12 item 9).

    python scripts/probe_epochs.py bench [--seconds S] [--runs N]   # the bench, each flow probed
    python scripts/probe_epochs.py flow run NAME ...               # one probed flow (the bench's child)

Each probed flow times every snapshot Bytewax asks of its stateful steps (state type, pickled bytes,
the worker's CPU ms), the stall of each epoch close (wall time from its first snapshot to the next
batch any step gets: pickling plus the recovery store's commit), its wall-clock phase, and every
collection of the garbage collector over 0.5 ms of CPU; it appends them as JSON lines to
$EPOCH_PROBE_DIR/<flow>.jsonl and keeps the last close's snapshots in <flow>.last_close.pickle (to
break a state down by attribute). `bench` prints per flow the collections and the last epoch closes:
keys snapshotted (the keys touched in the epoch), bytes, pickling ms, stall ms and the largest state
types. PROBE_GC="t0,t1,t2" runs the flows with other collection thresholds, PROBE_NO_PHASE=1 starts them at
once (no EPOCH_PHASES). CPU times are the
worker thread's, so other processes' load leaves them be; the stalls are wall times.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

PROBE_DIR = "EPOCH_PROBE_DIR"


def _install(flow: str) -> None:
    from pets.flows import executor, market_state, recovery

    out = (Path(os.environ[PROBE_DIR]) / f"{flow}.jsonl").open("a", buffering=1)
    lock = threading.Lock()
    close: dict[str, Any] = {"start": None, "snaps": []}

    def write(record: dict[str, Any]) -> None:
        with lock:
            out.write(json.dumps(record) + "\n")

    def flush_close(now: float) -> None:
        snaps = close["snaps"]
        if close["start"] is None:
            return
        per_type: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        for name, size, ms in snaps:
            entry = per_type[name]
            entry[0] += 1
            entry[1] += size
            entry[2] += ms
        write({
            "kind": "close", "at": close["start"], "wall": close["wall"], "keys": len(snaps),
            "bytes": sum(s[1] for s in snaps), "pickle_ms": round(sum(s[2] for s in snaps), 2),
            "stall_ms": round((now - close["start"]) * 1000, 2),
            "types": {k: [v[0], v[1], round(v[2], 2)] for k, v in per_type.items()},
            "gc": gc.get_stats(),
        })  # fmt: skip
        close["start"], close["snaps"] = None, []
        raw = close.pop("raw", [])
        (Path(os.environ[PROBE_DIR]) / f"{flow}.last_close.pickle").write_bytes(pickle.dumps(raw))

    def wrap_snapshot(cls: type, state_of: Any) -> None:
        original = cls.snapshot

        def snapshot(self: Any) -> Any:
            start = time.perf_counter()
            cpu = time.thread_time()
            if close["start"] is None:
                close["start"], close["wall"] = start, time.time()
            result = original(self)
            ms = (time.thread_time() - cpu) * 1000
            close["snaps"].append((type(state_of(self)).__name__, len(result), ms))
            if isinstance(result, bytes):
                close.setdefault("raw", []).append(result)
            return result

        cls.snapshot = snapshot

    def wrap_batch(cls: type) -> None:
        original = cls.on_batch

        def on_batch(self: Any, values: Any) -> Any:
            if close["start"] is not None:
                flush_close(time.perf_counter())
            return original(self, values)

        cls.on_batch = on_batch

    wrap_snapshot(recovery._FlatMapLogic, lambda logic: logic.state)
    wrap_snapshot(market_state.BookStateLogic, lambda logic: logic)
    wrap_snapshot(executor.ExecutorLogic, lambda logic: logic)
    for cls in (recovery._FlatMapLogic, market_state.BookStateLogic, executor.ExecutorLogic):
        wrap_batch(cls)

    gc_start: dict[str, float] = {}

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":  # the thread's CPU time: other processes' load does not count
            gc_start["t"] = time.thread_time()
        elif "t" in gc_start:
            ms = (time.thread_time() - gc_start.pop("t")) * 1000
            if ms > 0.5:
                gen = info["generation"]
                write({"kind": "gc", "at": time.perf_counter(), "gen": gen, "ms": round(ms, 2)})

    gc.callbacks.append(on_gc)
    if os.environ.get("PROBE_GC"):  # "t0,t1,t2": other collection thresholds, to compare
        gc.set_threshold(*(int(t) for t in os.environ["PROBE_GC"].split(",")))


def _flow_main() -> None:
    flow = sys.argv[3]
    _install(flow)
    if os.environ.get("PROBE_NO_PHASE"):  # the flows start at once, as before EPOCH_PHASES
        from pets.cli import flow as flow_cli

        flow_cli.EPOCH_PHASES.clear()
    from pets.cli import main

    sys.argv = ["pets", *sys.argv[1:]]
    main()


def _bench(seconds: float, runs: int) -> None:
    from pets.cli import settings_from_env
    from pets.runtime import latency

    probe_dir = Path(tempfile.mkdtemp(prefix="pets-probe-"))
    os.environ[PROBE_DIR] = str(probe_dir)
    original = latency._start_flows

    def start(settings: Any, state_dir: Path, epoch_ms: int, recovery: bool) -> Any:
        real = sys.executable
        # the bench runs `<venv>/bin/pets flow run NAME`: run this file in its place
        wrapper = probe_dir / "pets"
        wrapper.write_text(f'#!/bin/sh\nexec {real} {Path(__file__).resolve()} "$@"\n')
        wrapper.chmod(0o755)
        sys.executable = str(probe_dir / "python")
        try:
            return original(settings, state_dir, epoch_ms, recovery)
        finally:
            sys.executable = real

    latency._start_flows = start
    settings = settings_from_env()
    print(f"broker warm-up: {latency.warm_broker(settings, 15.0):,} frames", file=sys.stderr)
    for n in range(1, runs + 1):
        for file in probe_dir.glob("*.jsonl"):
            file.unlink()
        result = latency.measure_latency(
            settings, rate=2000, duration_s=seconds, progress=lambda s: print(s, file=sys.stderr)
        )
        print(
            f"--- run {n}: p50 {result['p50_ms']} p99 {result['p99_ms']} max {result['max_ms']} "
            f"load {result['load_average']} slowest {result['slowest_ms_at_s'][:4]}"
        )
        _report(probe_dir)


def _report(probe_dir: Path) -> None:
    for file in sorted(probe_dir.glob("*.jsonl")):
        records = [json.loads(line) for line in file.read_text().splitlines()]
        closes = [r for r in records if r["kind"] == "close"]
        gcs = [r for r in records if r["kind"] == "gc"]
        by_gen = {gen: sorted(g["ms"] for g in gcs if g["gen"] == gen) for gen in (0, 1, 2)}
        pauses = ", ".join(
            f"gen{gen} {len(v)} {max(v, default=0)} {round(sum(v), 1)}" for gen, v in by_gen.items()
        )
        print(f"{file.stem}: {len(closes)} epoch closes; gc pauses >0.5 ms CPU (n, max, sum): {pauses}")
        first = closes[0]["at"] if closes else 0.0
        print(
            "  full collections (s from the first close, ms CPU):",
            [(round(g["at"] - first, 1), g["ms"]) for g in gcs if g["gen"] == 2],
        )
        if closes:
            print("  gc stats at the last close:", closes[-1]["gc"])
        print("  close wall phase (s mod 5):", [round(c["wall"] % 5, 3) for c in closes])
        for c in closes[-6:]:
            top = sorted(c["types"].items(), key=lambda kv: -kv[1][1])[:6]
            kinds = ", ".join(f"{k} n{v[0]} {v[1]:,}B {v[2]}ms" for k, v in top)
            print(
                f"  keys {c['keys']:4d} bytes {c['bytes']:>9,} pickle(cpu) {c['pickle_ms']:7.1f} ms "
                f"stall {c['stall_ms']:7.1f} ms | {kinds}"
            )


if __name__ == "__main__":
    if sys.argv[1:3] == ["flow", "run"]:
        _flow_main()
    else:
        args = sys.argv[2:]
        secs = float(args[args.index("--seconds") + 1]) if "--seconds" in args else 40.0
        count = int(args[args.index("--runs") + 1]) if "--runs" in args else 1
        _bench(secs, count)
