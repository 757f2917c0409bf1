"""Bytewax recovery stores: one per flow, created and initialised on first use."""

from __future__ import annotations

from pathlib import Path

from bytewax.recovery import RecoveryConfig, init_db_dir


def recovery_store(db_dir: Path, workers: int = 1) -> RecoveryConfig:
    """The recovery store in `db_dir`, initialised with `workers` partitions when it is new."""
    if not db_dir.exists():
        db_dir.mkdir(parents=True)
        init_db_dir(db_dir, workers)
    return RecoveryConfig(str(db_dir))
