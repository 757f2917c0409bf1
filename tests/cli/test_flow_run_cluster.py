"""`pets flow run NAME` as a process of a Bytewax cluster: what it refuses before anything starts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from pets.cli import main


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    # no broker is needed: every refusal here comes before the services are checked
    base = {"PETS_MODE": "production", "PETS_KAFKA_BOOTSTRAP": "127.0.0.1:9", "PETS_POSTGRES_DSN": ""}
    return CliRunner().invoke(main, ["flow", "run", *args], env=base | (env or {}))


def test_risk_refuses_more_than_one_worker_naming_its_global_key() -> None:
    result = _run("risk", "--workers", "2")
    assert result.exit_code == 1
    assert "risk runs on 1 worker: its state is one global key (portfolio limits are exact" in result.output
    clustered = _run("risk", "--process-id", "1", "--addresses", "a:2101;b:2101")
    assert clustered.exit_code == 1 and "one global key" in clustered.output


def test_the_live_executor_refuses_a_cluster_in_one_line() -> None:
    # one venue account, one heartbeat, one user channel; the paper executor is keyed by market
    result = _run("executor", "--live", "--workers", "2")
    assert result.exit_code == 1
    assert "executor --live runs on one worker: one venue account" in result.output
    assert "1 process(es) x 2 worker(s) refused" in result.output
    assert "\n" not in result.output.strip()


def test_the_executor_is_refused_only_beyond_its_partitions() -> None:
    # order.exec, md.book: 4 partitions (config/topics.yaml); 3 x 2 would leave 2 workers idle
    result = _run("executor", "--workers", "2", "--process-id", "0", "--addresses", "a:1;b:1;c:1")
    assert result.exit_code == 1
    assert "3 process(es) x 2 worker(s) = 6 workers" in result.output
    assert "one global key" not in result.output


def test_a_cluster_larger_than_the_input_partitions_is_refused() -> None:
    # md.book has 4 partitions (config/topics.yaml): 3 processes x 2 workers would leave 2 idle
    result = _run("market_state", "--workers", "2", "--process-id", "0", "--addresses", "a:1;b:1;c:1")
    assert result.exit_code == 1
    assert "3 process(es) x 2 worker(s) = 6 workers" in result.output
    assert "at most 4 partition(s) (md.book 4): 2 worker(s) would own no partition" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("market_state", "--process-id", "0"), "a cluster needs both --process-id and --addresses"),
        (("market_state", "--addresses", "a:1;b:1"), "a cluster needs both --process-id and --addresses"),
        (("market_state", "--process-id", "2", "--addresses", "a:1;b:1"), "names processes 0 .. 1"),
        (("chain", "--workers", "2"), "chain is a plain service, not a Bytewax flow"),
    ],
)
def test_an_incomplete_or_impossible_cluster_is_one_line(args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 1
    assert message in result.output


def test_the_process_id_comes_from_the_statefulset_pod_name_as_bytewax_does() -> None:
    env = {"BYTEWAX_POD_NAME": "risk-1", "BYTEWAX_STATEFULSET_NAME": "risk", "BYTEWAX_ADDRESSES": "a:1;b:1"}
    result = _run("risk", env=env)
    assert result.exit_code == 1 and "2 process(es) x 1 worker(s) refused" in result.output
