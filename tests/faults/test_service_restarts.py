"""Issue 12: Kafka and PostgreSQL stopped and started again under load.

A private broker and database of this test (pets.infra in a temporary state dir, their own ports:
the shared services other work runs on are never stopped). The risk flow takes intents, then the
market_state flow book frames, at a steady rate while the broker is stopped for 3 s and started
again, then the database likewise: every intent is decided once and every frame gets its top of
book, with nothing published twice and no row stored twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pets.infra.stack import missing_system_tools
from pets.runtime import faults
from pets.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def private(settings: Settings) -> Iterator[Settings]:
    missing = missing_system_tools()
    if missing and os.environ.get("PETS_REQUIRE_INFRA") != "1":
        pytest.skip(f"missing {', '.join(missing)}: run scripts/system-deps.sh")
    with faults.private_stack(settings) as services:
        yield services


@pytest.mark.parametrize("scenario", [faults.risk_scenario, faults.market_state_scenario])
def test_kafka_and_postgres_restarted_under_load_lose_and_duplicate_nothing(
    private: Settings, settings: Settings, scenario: faults.Scenario
) -> None:
    assert private.kafka_bootstrap != settings.kafka_bootstrap
    assert private.postgres_dsn != settings.postgres_dsn
    result = scenario(private, faults.services_stopped_and_restarted, "kafka+postgres restart")
    assert result.inputs > 0 and result.outputs > 0, result
    assert (result.lost, result.duplicated) == (0, 0), result
