"""Sensors against the real Kafka broker and PostgreSQL: batch.control commands and newly resolved markets."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import dagster as dg
import msgspec
import pytest
from batch_support import MakeResources, read_topic
from click.testing import CliRunner

from pets.assets.markets.assets import market_row
from pets.assets.models.sensors import MIN_NEW_RESOLVED, batch_control_sensor, resolved_markets_sensor
from pets.cli import main
from pets.pipelines.tables import MARKETS
from pets.schemas.codec import encode
from pets.schemas.control import BatchCommand, DeadLetter
from pets.schemas.market_data import MarketInfo

pytestmark = pytest.mark.integration


def evaluate(
    sensor: dg.SensorDefinition, cursor: str | None, resources: dict[str, object]
) -> dg.SensorResult:
    result = sensor(dg.build_sensor_context(cursor=cursor, resources=resources))
    assert isinstance(result, dg.SensorResult)
    return result


def test_batch_control_commands_become_runs_and_the_cursor_resumes(
    make_resources: MakeResources, kafka_bootstrap: str, topic_prefix: str, tmp_path: object
) -> None:
    resources = make_resources()
    kafka = resources["kafka"]
    cli = CliRunner().invoke(
        main,
        ["models", "retrain", "--data-dir", str(tmp_path), "--json"],
        env={"PETS_TOPIC_PREFIX": topic_prefix},
    )
    assert cli.exit_code == 0, cli.output
    retrain = json.loads(cli.output)
    now = time.time_ns()
    rank = BatchCommand(
        command_id="rank-1", command="rank_whales", args={"ranking_date": "2025-01-31", "top": "5"}, ts_ns=now
    )
    refresh = BatchCommand(
        command_id="refresh-1", command="refresh_universe", args={"date": "2025-01-30"}, ts_ns=now
    )
    bad_args = BatchCommand(command_id="rank-2", command="rank_whales", args={"top": "many"}, ts_ns=now)
    kafka.publish(
        "batch.control", [("rank_whales", rank), ("refresh_universe", refresh), ("rank_whales", bad_args)]
    )
    from pets.pipelines.kafka_io import producer

    out = producer(kafka.settings())
    out.send(f"{topic_prefix}batch.control", key=b"retrain_model", value=b'{"command": "retrain_model"}').get(
        10
    )
    out.close()

    first = evaluate(batch_control_sensor, None, resources)
    requests = {r.run_key: r for r in first.run_requests or []}
    assert set(requests) == {retrain["command_id"], "rank-1", "refresh-1"}
    assert requests[retrain["command_id"]].job_name == "retrain_model"
    assert requests[retrain["command_id"]].run_config == {
        "ops": {"calibration_model": {"config": {"data_dir": str(tmp_path)}}}
    }
    assert requests["rank-1"].job_name == "rank_whales"
    assert requests["rank-1"].run_config == {
        "ops": {"whale_rankings": {"config": {"ranking_date": "2025-01-31", "top": 5}}}
    }
    assert requests["refresh-1"].job_name == "refresh_universe"
    assert requests["refresh-1"].partition_key == "2025-01-30"
    assert json.loads(first.cursor or "") == {"0": 5}

    letters = [
        msgspec.json.decode(v, type=DeadLetter)
        for _, v in read_topic(kafka_bootstrap, f"{topic_prefix}dlq.trading")
    ]
    reasons = sorted(letter.reason for letter in letters)
    assert len(reasons) == 2
    assert reasons[0].startswith("Object missing required field `command_id`")
    assert reasons[1].startswith("bad args for rank_whales: invalid literal for int()")

    # The returned cursor resumes after what was read: nothing again, then only the new command.
    again = evaluate(batch_control_sensor, first.cursor, resources)
    assert not again.run_requests and again.cursor == first.cursor
    later = BatchCommand(command_id="retrain-2", command="retrain_model", ts_ns=time.time_ns())
    kafka.publish("batch.control", [("retrain_model", later)])
    third = evaluate(batch_control_sensor, first.cursor, resources)
    assert [r.run_key for r in third.run_requests or []] == ["retrain-2"]
    assert json.loads(third.cursor or "") == {"0": 6}
    assert encode(later)  # the wire form the CLI and the sensor share


def _resolved_market(i: int) -> MarketInfo:
    return MarketInfo(
        condition_id=f"0x{i:064x}",
        market_id=str(i),
        question=f"Q{i}?",
        slug=f"q{i}",
        category="test",
        token_ids=(f"{i}1", f"{i}2"),
        outcomes=("Yes", "No"),
        neg_risk=False,
        tick_size=Decimal("0.01"),
        min_order_size=Decimal(5),
        active=False,
        closed=True,
        accepting_orders=False,
        outcome_prices=(Decimal(1), Decimal(0)),
        winning_asset_id=f"{i}1",
    )


def test_resolved_markets_sensor_retrains_after_enough_new_resolutions(make_resources: MakeResources) -> None:
    from pets.pipelines.tables import ts_from_ms

    postgres = make_resources()["postgres"]
    observed = ts_from_ms(1_700_000_000_000)
    postgres.write(MARKETS, [market_row(_resolved_market(i), observed) for i in range(10)])
    baseline = evaluate(resolved_markets_sensor, None, {"postgres": postgres})
    assert not baseline.run_requests and baseline.cursor == "10"

    postgres.write(
        MARKETS, [market_row(_resolved_market(i), observed) for i in range(10, 10 + MIN_NEW_RESOLVED - 1)]
    )
    skipped = resolved_markets_sensor(
        dg.build_sensor_context(cursor=baseline.cursor, resources={"postgres": postgres})
    )
    assert isinstance(skipped, dg.SkipReason)

    postgres.write(MARKETS, [market_row(_resolved_market(10 + MIN_NEW_RESOLVED - 1), observed)])
    fired = evaluate(resolved_markets_sensor, baseline.cursor, {"postgres": postgres})
    assert [r.run_key for r in fired.run_requests or []] == [f"resolved-{10 + MIN_NEW_RESOLVED}"]
    assert fired.cursor == str(10 + MIN_NEW_RESOLVED)
