"""Bytewax recovery: the stores (one per flow) and the snapshots the stateful steps hand to them.

Bytewax asks every stateful step for an immutable snapshot of each key's state at every epoch close,
with or without a recovery store, on the worker thread. Its own `stateful_flat_map` deep-copies the
state, which for a bot or the risk engine took 2-5 ms per key and held each flow up for 70-190 ms
every epoch (`pets bench loop-latency`). A pickle is the same immutable copy 3-6x faster, and it is
what the store keeps anyway: snapshots here are pickled bytes, and `thaw` turns a resume state back
into the object (a state stored by an older version as the object itself is taken as it is). The
classes of the compiled hot path pickle through `pets.native.snapshot_classes`, so a snapshot taken
by a compiled flow resumes in a pure-Python one and the other way round.
"""

from __future__ import annotations

import copyreg
import functools
import io
import pickle
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from bytewax import operators as op
from bytewax.operators import KeyedStream, StatefulBatchLogic
from bytewax.recovery import RecoveryConfig, init_db_dir

from pets.native import snapshot_classes

S = TypeVar("S")
V = TypeVar("V")
W = TypeVar("W")


SHAPE_FILE = "cluster_shape"  # "<processes> <workers per process>" of the cluster that made the store


class StoreShapeError(ValueError):
    """A recovery store made for another cluster shape than the one resuming it."""


def recovery_store(db_dir: Path, workers: int = 1, process_id: int = 0, processes: int = 1) -> RecoveryConfig:
    """Process `process_id`'s recovery store in `db_dir` for a cluster of `processes` x `workers`.

    A new store gets this process's share of the cluster's recovery partitions (one per worker:
    part-(process_id * workers) ..), so each process keeps its own on its own volume and together they
    cover the cluster, as Bytewax requires. An existing store must have been made for the same shape
    wherever the shape decides the layout (a cluster's per-process share; one worker in all, whose
    Kafka source is one "all" partition, against several, whose source splits by partition index):
    otherwise StoreShapeError, since resuming would read the input again from the start. A store of a
    single process resumes with another worker count in that process (Bytewax rescales its partitions)
    as long as both counts are above one."""
    shape = (processes, workers)
    marker = db_dir / SHAPE_FILE
    if store_exists(db_dir):
        made = _shape(marker)
        if _layout_differs(made, shape):
            raise StoreShapeError(
                f"recovery store {db_dir} was made for {made[0]} process(es) x {made[1]} worker(s), not "
                f"{processes} x {workers}: its snapshots cover other partitions; drain the flow and "
                "start it on a new store (docs/deploy.md, Changing a cluster's shape)"
            )
        return RecoveryConfig(str(db_dir))
    total = processes * workers
    staging = db_dir.with_name(db_dir.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    init_db_dir(staging, total)
    for index in range(total):  # another process's share: that process creates its own
        if not process_id * workers <= index < (process_id + 1) * workers:
            (staging / f"part-{index}.sqlite3").unlink()
    (staging / SHAPE_FILE).write_text(f"{processes} {workers}\n")
    db_dir.mkdir(parents=True, exist_ok=True)  # a run without a store may have left its order log here
    # the shape first: a store is recognised by its partitions, which must never appear without it
    for file in sorted(staging.iterdir(), key=lambda path: path.name != SHAPE_FILE):
        file.rename(db_dir / file.name)
    staging.rmdir()
    return RecoveryConfig(str(db_dir))


def _shape(marker: Path) -> tuple[int, int]:
    """The shape a store was made for; a store older than the marker was one process's (one "all"
    source partition: its worker count did not change the layout)."""
    if not marker.is_file():
        return (1, 1)
    processes, workers = marker.read_text().split()
    return int(processes), int(workers)


def _layout_differs(made: tuple[int, int], now: tuple[int, int]) -> bool:
    if made[0] > 1 or now[0] > 1:
        return made != now
    return (made[1] > 1) != (now[1] > 1)


def store_exists(db_dir: Path) -> bool:
    """Whether `db_dir` holds a recovery store (a run without one may have left just its order log
    there, `trading_io.order_log`)."""
    return any(db_dir.glob("part-*.sqlite3"))


def flow_store(recovery_dir: Path, flow_name: str, process_id: int | None) -> Path:
    """Where a flow's recovery store (and its order log) lives: a cluster's processes each keep their
    share of the recovery partitions on their own volume."""
    return recovery_dir / (flow_name if process_id is None else f"{flow_name}.process-{process_id}")


def freeze(state: object) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _dispatch_table()
    pickler.dump(state)
    return buffer.getvalue()


def prepare_snapshots() -> None:
    """Import every class a snapshot may pickle now rather than at the first epoch close, where
    building the table (it imports the whole compiled path) stalled a flow 1.9-3.6 s on a loaded
    machine."""
    _dispatch_table()


@functools.cache
def _dispatch_table() -> dict[type, Any]:
    return copyreg.dispatch_table | snapshot_classes()


def thaw(resume: object) -> Any:
    """The state of a snapshot taken by `freeze` (None stays None)."""
    return pickle.loads(resume) if isinstance(resume, bytes) else resume


def stateful_flat_map(
    step_id: str,
    up: KeyedStream[V],
    mapper: Callable[[S | None, V], tuple[S | None, Iterable[W]]],
) -> KeyedStream[W]:
    """`bytewax.operators.stateful_flat_map` with pickled snapshots (and one call per batch)."""
    return op.stateful_batch(step_id, up, lambda resume: _FlatMapLogic(mapper, thaw(resume)))


class _FlatMapLogic(StatefulBatchLogic[V, W, bytes]):
    def __init__(self, mapper: Callable[[S | None, V], tuple[S | None, Iterable[W]]], state: S | None):
        self.mapper = mapper
        self.state: Any = state

    def on_batch(self, values: list[V]) -> tuple[Iterable[W], bool]:
        mapper, state = self.mapper, self.state
        out: list[W] = []
        for value in values:
            state, emitted = mapper(state, value)
            out.extend(emitted)
        self.state = state
        return out, state is None  # None discards the key's state, as the stock operator does

    def snapshot(self) -> bytes:
        return freeze(self.state)
