from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    """`pets run` in these tests uses no services (no database writes unless a test asks)."""
    monkeypatch.setenv("PETS_MODE", "embedded")
    monkeypatch.delenv("PETS_POSTGRES_DSN", raising=False)
