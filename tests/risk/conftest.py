from __future__ import annotations

import pytest
from risk_factories import make_config

from pets.schemas.config import PetsConfig


@pytest.fixture(scope="session")
def config() -> PetsConfig:
    return make_config()
