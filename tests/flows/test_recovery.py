"""flows/recovery.py: the stateful step whose snapshots are pickles, resumed after a crash."""

from __future__ import annotations

import gc
import pickle
import signal
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main
from click.testing import CliRunner

from pets.flows.recovery import StoreShapeError, recovery_store, stateful_flat_map, thaw
from pets.settings import Settings


def _running_totals(
    items: list[tuple[str, int] | TestingSource.ABORT], out: list[tuple[str, int]]
) -> Dataflow:
    flow = Dataflow("totals")
    keyed = op.key_on("key", op.input("in", flow, TestingSource(items, batch_size=3)), lambda kv: kv[0])

    def add(total: dict[str, int] | None, kv: tuple[str, int]) -> tuple[dict[str, int], list[int]]:
        total = total or {"sum": 0}
        total["sum"] += kv[1]  # mutated in place: a snapshot must be a copy, not this object
        return total, [total["sum"]]

    op.output("out", stateful_flat_map("totals", keyed, add), TestingSink(out))
    return flow


def test_a_crashed_step_resumes_from_its_pickled_state_without_replaying_twice(tmp_path: Path) -> None:
    values = [("a", n) for n in range(1, 11)] + [("b", n) for n in range(1, 11)]
    items: list[tuple[str, int] | TestingSource.ABORT] = [*values[:13], TestingSource.ABORT(), *values[13:]]
    recovery = recovery_store(tmp_path / "store")
    first: list[tuple[str, int]] = []
    run_main(_running_totals(items, first), epoch_interval=timedelta(0), recovery_config=recovery)
    second: list[tuple[str, int]] = []
    run_main(_running_totals(items, second), epoch_interval=timedelta(0), recovery_config=recovery)

    assert first and second  # it stopped part way and the second run went on
    assert second[-1] == ("b", 55) and ("a", 55) in first + second
    # every running total appears once per epoch it was produced in: the resumed state was exact
    totals = [(key, sum(range(1, n + 1))) for key in "ab" for n in range(1, 11)]
    assert sorted({*first, *second}) == sorted(totals)
    with sqlite3.connect(next((tmp_path / "store").glob("*.sqlite3"))) as db:
        query = "SELECT ser_change FROM snaps WHERE step_id = 'totals.totals'"
        stored = [blob for (blob,) in db.execute(query)]
    assert stored  # snapshots were taken, and what the store keeps are pickles of the state
    assert all(isinstance(thaw(pickle.loads(blob)), dict) for blob in stored if blob is not None)


def test_thaw_takes_a_state_stored_as_the_object_itself() -> None:
    assert thaw({"sum": 3}) == {"sum": 3}
    assert thaw(None) is None


def test_each_process_of_a_cluster_creates_its_share_of_the_recovery_partitions(tmp_path: Path) -> None:
    for process in range(2):
        recovery_store(tmp_path / f"p{process}", workers=2, process_id=process, processes=2)
    shares = [sorted(p.name for p in (tmp_path / f"p{i}").glob("*.sqlite3")) for i in range(2)]
    # 2 x 2 workers: four partitions in all, two per process, none twice
    assert shares == [["part-0.sqlite3", "part-1.sqlite3"], ["part-2.sqlite3", "part-3.sqlite3"]]
    recovery_store(tmp_path / "p1", workers=2, process_id=1, processes=2)  # the same shape resumes


@pytest.mark.parametrize(
    ("made", "now"),
    [
        ((2, 2), (4, 1)),  # a cluster's shares cover other partitions
        ((1, 2), (2, 2)),
        ((1, 1), (1, 2)),  # one "all" source partition against one per partition index
        ((1, 2), (1, 1)),
    ],
)
def test_a_store_refuses_another_cluster_shape(
    tmp_path: Path, made: tuple[int, int], now: tuple[int, int]
) -> None:
    recovery_store(tmp_path / "store", workers=made[1], process_id=0, processes=made[0])
    with pytest.raises(StoreShapeError, match=rf"made for {made[0]} process\(es\) x {made[1]} worker"):
        recovery_store(tmp_path / "store", workers=now[1], process_id=0, processes=now[0])


def test_one_process_resumes_with_another_worker_count_above_one(tmp_path: Path) -> None:
    recovery_store(tmp_path / "store", workers=2)
    recovery_store(tmp_path / "store", workers=3)  # Bytewax rescales; the source's layout is the same
    legacy = tmp_path / "legacy"  # a store made before the shape was recorded: one "all" partition
    legacy.mkdir()
    recovery_store(legacy, workers=1)
    with pytest.raises(StoreShapeError):
        recovery_store(legacy, workers=2)


@pytest.mark.integration
def test_flow_run_builds_the_snapshot_table_before_the_dataflow_runs(
    prefixed_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the table (it imports the whole compiled path) was built by the first snapshot, inside
    the running flow: its first epoch close stalled 1.9-3.6 s on a loaded machine."""
    import bytewax.run

    from pets.cli import main
    from pets.flows import recovery

    tables_at_run: list[int] = []

    def run(*args: object, **kwargs: object) -> None:
        tables_at_run.append(recovery._dispatch_table.cache_info().currsize)

    monkeypatch.setattr(bytewax.run, "cli_main", run)
    monkeypatch.setattr(gc, "freeze", lambda: None)  # this process lives on after the test
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    recovery._dispatch_table.cache_clear()
    env = {
        "PETS_MODE": "production", "PETS_KAFKA_BOOTSTRAP": prefixed_settings.require_kafka(),
        "PETS_TOPIC_PREFIX": prefixed_settings.topic_prefix, "PETS_STATE_DIR": str(tmp_path),
        "PETS_POSTGRES_DSN": None,
    }  # fmt: skip
    result = CliRunner().invoke(main, ["flow", "run", "risk", "--no-recovery"], env=env)
    assert result.exit_code == 0, result.output
    assert tables_at_run == [1]


def test_a_directory_holding_only_an_order_log_becomes_a_store(tmp_path: Path) -> None:
    """A run without recovery writes the order log where the store goes (trading_io.order_log); a later
    run with recovery must still get a store there (before: the directory existed, so no partitions)."""
    store = tmp_path / "bots"
    store.mkdir()
    (store / "input_order.log").write_text("")
    recovery = recovery_store(store)
    assert sorted(p.name for p in store.glob("part-*.sqlite3")) == ["part-0.sqlite3"]
    out: list[tuple[str, int]] = []
    flow = _running_totals([("a", 1), ("a", 2)], out)
    run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)
    assert out == [("a", 1), ("a", 3)]
