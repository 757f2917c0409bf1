"""Fixtures of the batch-layer tests: a migrated database, resources on it, test topics cleaned up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batch_support import MakeResources

from pets.assets.environment import resources_for
from pets.settings import Mode, Settings, VenueEndpoints


@pytest.fixture
def migrated_db(fresh_db: str) -> str:
    from pets.pipelines.migrations import migrate

    migrate(fresh_db)
    return fresh_db


@pytest.fixture
def cleanup_topics(kafka_bootstrap: str, topic_prefix: str) -> Iterator[None]:
    """Delete this test's prefixed topics afterwards (the broker is shared)."""
    yield
    from pets.pipelines.kafka_io import admin_for, delete_topics

    admin = admin_for(kafka_bootstrap)
    try:
        mine = [t for t in admin.list_topics() if t.startswith(topic_prefix)]
    finally:
        admin.close()
    delete_topics(Settings(kafka_bootstrap=kafka_bootstrap), mine)


@pytest.fixture
def make_resources(
    migrated_db: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    settings: Settings,
    cleanup_topics: None,
) -> MakeResources:
    """Resources through the same environment helper as the code location, on test addresses."""

    def make(
        gamma_url: str = "http://127.0.0.1:9", data_api_url: str = "http://127.0.0.1:9"
    ) -> dict[str, Any]:
        return resources_for(
            Settings(
                mode=Mode.LOCAL,
                config_dir=settings.config_dir,
                state_dir=tmp_path / "state",
                kafka_bootstrap=kafka_bootstrap,
                postgres_dsn=migrated_db,
                topic_prefix=topic_prefix,
                venue=VenueEndpoints(gamma_url=gamma_url, data_api_url=data_api_url),
            )
        )

    return make
