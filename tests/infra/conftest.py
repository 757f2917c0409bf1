"""Fixtures of the infra tests: settings isolated by a topic prefix, cleaned up afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from pets.settings import Settings


@pytest.fixture
def prefixed_settings(settings: Settings, kafka_bootstrap: str, topic_prefix: str) -> Iterator[Settings]:
    """Settings on the shared broker with a unique topic prefix; its topics are deleted afterwards."""
    from pets.pipelines.kafka_io import delete_topics, existing_topics

    isolated = replace(settings, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    yield isolated
    delete_topics(isolated, [name for name in existing_topics(isolated) if name.startswith(topic_prefix)])
