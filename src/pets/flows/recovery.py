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


def recovery_store(db_dir: Path, workers: int = 1) -> RecoveryConfig:
    """The recovery store in `db_dir`, initialised with `workers` partitions when it has none."""
    if not store_exists(db_dir):
        db_dir.mkdir(parents=True, exist_ok=True)
        init_db_dir(db_dir, workers)
    return RecoveryConfig(str(db_dir))


def store_exists(db_dir: Path) -> bool:
    """Whether `db_dir` holds a recovery store (a run without one may have left just its order log
    there, `trading_io.order_log`)."""
    return any(db_dir.glob("part-*.sqlite3"))


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
