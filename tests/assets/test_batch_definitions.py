"""The code location loads; every batch asset has a group, kinds, a one-line docstring and checks."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pets.assets.definitions import BATCH_ASSETS, defs
from pets.assets.environment import resources_for
from pets.cli.dagster import PRODUCTION_YAML, dagster_home
from pets.settings import Mode, Settings, SettingsError


def test_definitions_load_with_every_asset_job_schedule_and_sensor() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "market_universe",
        "wallet_trades",
        "whale_rankings",
        "calibration_model",
        "bot_performance_daily",
    } <= keys
    assert {"kafka/md_book", "kafka/whale_rankings", "kafka/batch_control", "postgres/pnl_snapshots"} <= keys
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "refresh_universe",
        "rank_whales",
        "retrain_model",
        "bot_performance_report",
    }
    assert {s.name for s in defs.schedules or []} == {
        "daily_universe",
        "daily_rankings",
        "weekly_retrain",
        "daily_bot_performance",
    }
    assert {s.name for s in defs.sensors or []} == {"resolved_markets_sensor", "batch_control_sensor"}
    assert set(defs.resources or {}) == {"postgres", "kafka", "gamma", "data_api", "model_store"}


def test_each_batch_asset_has_group_kinds_docstring_and_a_blocking_check() -> None:
    graph = defs.resolve_asset_graph()
    for asset in BATCH_ASSETS:
        node = graph.get(asset.key)
        assert node.group_name in {"markets", "whales", "models", "reports"}, asset.key
        assert asset.specs_by_key[asset.key].kinds, asset.key
        description = node.description or ""
        assert description and "\n" not in description.strip(), asset.key
        checks = [graph.get(k) for k in graph.asset_check_keys if k.asset_key == asset.key]
        assert any(c.blocking for c in checks), f"{asset.key} has no blocking check"


def test_lineage_from_raw_feeds_to_rankings_to_bots() -> None:
    graph = defs.resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey.from_user_string(key)).parent_keys}

    assert parents("kafka/md_markets") == {"market_universe"}
    assert parents("kafka/whale_rankings") == {"whale_rankings"}
    assert {"kafka/whale_rankings", "kafka/chain_fill"} <= parents("kafka/signal_whale")
    assert "kafka/signal_whale" in parents("kafka/order_intent")
    assert parents("bot_performance_daily") == {"postgres/pnl_snapshots"}
    assert parents("wallet_trades") == {"market_universe", "postgres/wallet_fills"}


def test_production_needs_explicit_services_and_keeps_dagster_storage_in_postgres(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="PETS_POSTGRES_DSN, PETS_KAFKA_BOOTSTRAP"):
        resources_for(Settings(mode=Mode.PRODUCTION))
    production = Settings(mode=Mode.PRODUCTION, state_dir=tmp_path, postgres_dsn="postgresql://db/pets")
    home = dagster_home(production)
    assert home == tmp_path / "dagster"
    text = (home / "dagster.yaml").read_text()
    assert text == PRODUCTION_YAML and "postgresql://" not in text  # the DSN stays in the environment
    local = dagster_home(Settings(mode=Mode.LOCAL, state_dir=tmp_path / "local"))
    assert "storage:" not in (local / "dagster.yaml").read_text()  # SQLite files in DAGSTER_HOME
