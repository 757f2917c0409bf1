"""Session fixtures: the real Kafka broker and PostgreSQL started by `pets infra up`.

`make test` starts them and sets PETS_REQUIRE_INFRA=1, so a missing service fails the run
instead of silently skipping the integration tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pets.settings import Settings, load_settings


def _need(what: str) -> None:
    message = f"{what} is not running: start it with `pets infra up` (make test does)"
    if os.environ.get("PETS_REQUIRE_INFRA") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def kafka_bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        _need("Kafka")
    assert settings.kafka_bootstrap
    return settings.kafka_bootstrap


@pytest.fixture(scope="session")
def postgres_dsn(settings: Settings) -> str:
    if not settings.postgres_dsn:
        _need("PostgreSQL")
    assert settings.postgres_dsn
    return settings.postgres_dsn


@pytest.fixture
def fresh_db(postgres_dsn: str) -> Iterator[str]:
    """A brand-new empty database for one test, dropped afterwards."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(postgres_dsn)
    params["dbname"] = name
    yield make_conninfo(**params)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def topic_prefix() -> str:
    """A unique topic prefix so tests on the shared broker never see each other's messages."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture(scope="session")
def shared_data(settings: Settings) -> Path:
    """The real recorded Polymarket data (../shared/data); skipped with a reason when absent."""
    path = settings.shared_data_dir
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (a fresh clone has none; set PETS_SHARED_DATA)")
    return path


@pytest.fixture
def prefixed_settings(settings: Settings, kafka_bootstrap: str, topic_prefix: str) -> Iterator[Settings]:
    """Settings on the shared broker with a unique topic prefix; its topics are deleted afterwards."""
    from dataclasses import replace

    from pets.pipelines.kafka_io import delete_topics, existing_topics

    isolated = replace(settings, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    yield isolated
    delete_topics(isolated, [name for name in existing_topics(isolated) if name.startswith(topic_prefix)])
