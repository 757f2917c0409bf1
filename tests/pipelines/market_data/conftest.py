"""Fixtures of the market-data tests: the venue's example messages and the L2 recordings."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ws_examples(shared_data: Path) -> Path:
    return shared_data / "polymarket" / "ws_examples"


@pytest.fixture(scope="session")
def l2_recordings(shared_data: Path) -> list[Path]:
    paths = sorted((shared_data / "polymarket" / "l2").glob("*.jsonl.gz"))
    if not paths:
        pytest.skip(f"no L2 recordings under {shared_data / 'polymarket' / 'l2'}")
    return paths
