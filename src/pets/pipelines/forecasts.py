"""What Bots 9 and 10 ask for a win probability: the promoted calibration model and the trader's fair
values, each behind a small source object the bot polls on its timer (injected, so tests and the
backtest hand in their own).

The calibration model (pipelines/calibration.py) predicts P(outcome) from a token's price at some
horizon before resolution. A bot derives the model's features from what it has:
- price: the token's mid (the market's price; the bot compares the result with the executable ask);
- horizon: MarketInfo.end_date_ms - the venue clock (at least one hour: the model's log horizon
  explodes at zero);
- category: MarketInfo.category (a category the model has no column for counts as "other" when the
  model has that column, else as the reference level);
- volume: the book gives none, so the feature sits at its training mean (it contributes nothing).
`probability` evaluates one row in plain Python (no numpy/polars on the book path); it equals
CalibrationModel.predict on the same features (tests/bots/test_kelly_value_betting.py checks it).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Protocol

from pets.pipelines.calibration import PRICE_FLOOR, CalibrationModel, model_from_json
from pets.schemas.fair_values import FairValues, load_fair_values

MIN_HORIZON_DAYS = 1 / 24
DAY_MS = 86_400_000


def probability(
    model: CalibrationModel, price: float, horizon_days: float, category: str, volume: float | None = None
) -> float:
    """P(the token pays 1) from its price, the days to resolution and the market's category."""
    p = min(max(price, PRICE_FLOOR), 1 - PRICE_FLOOR)
    raw = {
        "logit_price": math.log(p / (1 - p)),
        "log_horizon_days": math.log(max(horizon_days, MIN_HORIZON_DAYS)),
        "log_volume": math.log1p(max(volume, 0.0)) if volume is not None else model.means["log_volume"],
    }
    z = model.weights[0]
    for name, weight in zip(model.features[1:], model.weights[1:], strict=True):
        if name.startswith("category="):
            level = name.removeprefix("category=")
            hit = category not in model.categories if level == "other" else category == level
            z += weight if hit else 0.0
        else:
            z += weight * (raw[name] - model.means[name]) / model.scales[name]
    return 1 / (1 + math.exp(-z))


class ModelSource(Protocol):
    """Where a bot finds the promoted model: a version name that changes on promotion, and its model."""

    def current_version(self) -> str | None: ...

    def load(self, version: str) -> CalibrationModel: ...


class ModelStoreSource:
    """The Dagster model store on disk (assets/resources.py ModelStoreResource):
    `<root>/<name>/current` names the promoted version, `<root>/<name>/<version>/model.json` holds it.
    The pointer is read again only when its stat changed (a promotion replaces the file: a new inode
    and times), so a bot's reload timer costs a stat, not a read."""

    # what the pointer's stat showed when it was last read, and the version it named (class defaults:
    # a source from an older snapshot reads the pointer at its first check)
    stamp: tuple[int, int, int, int] | None = None
    version: str | None = None

    def __init__(self, root: Path, name: str = "calibration") -> None:
        self.folder = Path(root) / name

    def current_version(self) -> str | None:
        pointer = os.path.join(self.folder, "current")
        try:
            stat = os.stat(pointer)
            stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
            if stamp != self.stamp:
                with open(pointer, encoding="utf-8") as file:
                    self.version = file.read().strip() or None
                self.stamp = stamp
        except FileNotFoundError:
            self.stamp = self.version = None
        return self.version

    def load(self, version: str) -> CalibrationModel:
        return model_from_json((self.folder / version / "model.json").read_bytes())


class FixedModelSource:
    """One model under a version name, swappable (the walk-forward backtest retrains into it)."""

    def __init__(self, model: CalibrationModel | None = None, version: str | None = None) -> None:
        self.model = model
        self.version = version

    def set(self, model: CalibrationModel, version: str) -> None:
        self.model, self.version = model, version

    def current_version(self) -> str | None:
        return self.version if self.model is not None else None

    def load(self, version: str) -> CalibrationModel:
        if self.model is None or version != self.version:
            raise LookupError(f"no model version {version!r} (have {self.version!r})")
        return self.model


class FairValueSource(Protocol):
    def current(self) -> FairValues: ...


class FileFairValues:
    """config/fair_values.yaml, reread when its modification time changes. A file that stops
    validating keeps the last good values (the error is kept in `error` for the operator)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.mtime_ns: int | None = None
        self.values = FairValues()
        self.error: str | None = None

    def current(self) -> FairValues:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return self.values
        if mtime != self.mtime_ns:
            self.mtime_ns = mtime
            try:
                self.values, self.error = load_fair_values(self.path), None
            except ValueError as exc:
                self.error = str(exc)
        return self.values


class NoFairValues:
    def current(self) -> FairValues:
        return FairValues()


def default_model_source(name: str) -> ModelSource:
    """The model store the `calibration_model` asset writes (<state_dir>/models, assets/environment.py)."""
    from pets.settings import load_settings

    return ModelStoreSource(load_settings().state_dir / "models", name)


def default_fair_values(file: str) -> FairValueSource:
    from pets.settings import load_settings

    return FileFairValues(load_settings().config_dir / file)
