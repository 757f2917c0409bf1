"""Calibration model: P(outcome) from the market price at a horizon before resolution.

A logistic regression (Platt scaling) on logit(price) plus simple features - log horizon in days,
log volume and one-hot category - fitted by Newton's method in numpy with an L2 penalty. Data is
split by time (the latest resolved events validate), and the model is scored by Brier score and
log loss against the raw price as the baseline forecast. Pure computation: the Dagster
``calibration_model`` asset stores, versions and promotes what this module fits.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl

PRICE_FLOOR = 0.001  # prices are clipped into [floor, 1 - floor] before the logit
DEFAULT_CATEGORY = "election"  # the calibration files hold election markets only
MIN_CATEGORY_ROWS = 20  # rarer categories share the "other" column
CALIBRATION_SCHEMA: dict[str, Any] = {
    "market": pl.String,
    "category": pl.String,
    "horizon_s": pl.Int64,
    "price": pl.Float64,
    "volume": pl.Float64,
    "outcome": pl.Int8,
    "resolved_s": pl.Int64,
}
CALIBRATION_FILES = (
    "market_data_one_day_before_certainty.csv",
    "market_data_one_week_before_certainty.csv",
    "market_data_one_month_before_certainty.csv",
    "market_data_six_months_before_certainty.csv",
)


class CalibrationDataError(ValueError):
    """Unusable calibration input: names the file and what is wrong."""


class Metrics(msgspec.Struct, frozen=True, kw_only=True):
    brier: float
    log_loss: float
    baseline_brier: float
    baseline_log_loss: float
    train_rows: int
    validation_rows: int
    split_resolved_s: int  # events resolved at or after this time validate

    def beats(self, other_log_loss: float) -> bool:
        return self.log_loss < other_log_loss


class CalibrationModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything needed to predict: feature names, standardization, categories and weights."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    means: dict[str, float]
    scales: dict[str, float]
    categories: tuple[str, ...]
    l2: float

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        return _sigmoid(_design(frame, self) @ np.asarray(self.weights))


def read_calibration_dir(folder: Path, category: str = DEFAULT_CATEGORY) -> pl.DataFrame:
    """The four horizon files of the calibration data set as one frame (CALIBRATION_SCHEMA)."""
    frames = []
    for name in CALIBRATION_FILES:
        path = folder / name
        if not path.exists():
            raise CalibrationDataError(f"{path}: missing calibration file")
        raw = pl.read_csv(path, infer_schema_length=0)
        missing = {
            "event_id",
            "question",
            "outcome",
            "avg_price",
            "volume",
            "time_before_certainty",
            "time_of_event_close",
        } - set(raw.columns)
        if missing:
            raise CalibrationDataError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        frames.append(
            raw.select(
                market=pl.col("event_id") + ":" + pl.col("question").str.strip_chars(),
                category=pl.lit(category),
                horizon_s=pl.col("time_before_certainty").cast(pl.Int64),
                price=pl.col("avg_price").cast(pl.Float64),
                volume=pl.col("volume").cast(pl.Float64),
                outcome=pl.col("outcome").cast(pl.Int8),
                resolved_s=pl.col("time_of_event_close").cast(pl.Int64),
            )
        )
    return pl.concat(frames).select([pl.col(n).cast(t) for n, t in CALIBRATION_SCHEMA.items()])


def time_split(data: pl.DataFrame, validation_share: float = 0.25) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Train on events resolved before the split time, validate on the rest (no event straddles)."""
    ordered = data.sort("resolved_s", "market", "horizon_s")
    times = ordered["resolved_s"].to_list()
    split = times[min(len(times) - 1, int(len(times) * (1 - validation_share)))]
    train = ordered.filter(pl.col("resolved_s") < split)
    valid = ordered.filter(pl.col("resolved_s") >= split)
    if train.height == 0 or valid.height == 0:
        raise CalibrationDataError(f"cannot split {data.height} rows by time: one side would be empty")
    return train, valid, int(split)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, PRICE_FLOOR, 1 - PRICE_FLOOR)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _raw_features(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    return {
        "logit_price": _logit(frame["price"].to_numpy()),
        "log_horizon_days": np.log(frame["horizon_s"].to_numpy() / 86_400),
        "log_volume": np.log1p(np.maximum(frame["volume"].to_numpy(), 0)),
    }


def _design(frame: pl.DataFrame, model: CalibrationModel) -> np.ndarray:
    raw = _raw_features(frame)
    columns = [np.ones(frame.height)]
    for name in model.features[1:]:
        if name.startswith("category="):
            category = name.removeprefix("category=")
            values = frame["category"].to_numpy()
            if category == "other":
                columns.append((~np.isin(values, model.categories)).astype(float))
            else:
                columns.append((values == category).astype(float))
        else:
            columns.append((raw[name] - model.means[name]) / model.scales[name])
    return np.column_stack(columns)


def fit(train: pl.DataFrame, *, l2: float = 1.0, iterations: int = 50) -> CalibrationModel:
    """Penalized logistic regression by Newton's method (the intercept is not penalized)."""
    raw = _raw_features(train)
    means = {k: float(v.mean()) for k, v in raw.items()}
    scales = {k: float(v.std()) or 1.0 for k, v in raw.items()}
    counts = train["category"].value_counts()
    common = sorted(counts.filter(pl.col("count") >= MIN_CATEGORY_ROWS)["category"].to_list())
    # The first common category is the reference level (no column of its own).
    one_hot = [f"category={c}" for c in common[1:]]
    if train["category"].n_unique() > len(common):
        one_hot.append("category=other")
    features = ("intercept", *raw, *one_hot)
    template = CalibrationModel(
        features=features,
        weights=(0.0,) * len(features),
        means=means,
        scales=scales,
        categories=tuple(common),
        l2=l2,
    )
    x = _design(train, template)
    y = train["outcome"].to_numpy().astype(float)
    penalty = np.full(len(features), l2)
    penalty[0] = 0.0
    w = np.zeros(len(features))
    for _ in range(iterations):
        p = _sigmoid(x @ w)
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return msgspec.structs.replace(template, weights=tuple(float(v) for v in w))


def brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, PRICE_FLOOR, 1 - PRICE_FLOOR)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def evaluate(model: CalibrationModel, valid: pl.DataFrame) -> tuple[float, float]:
    """(Brier, log loss) of the model on a frame."""
    y = valid["outcome"].to_numpy().astype(float)
    p = model.predict(valid)
    return brier(p, y), log_loss(p, y)


def train_and_score(
    data: pl.DataFrame, *, validation_share: float = 0.25, l2: float = 1.0
) -> tuple[CalibrationModel, Metrics, pl.DataFrame]:
    """Fit on the earlier events, score on the later ones; returns the validation frame too."""
    train, valid, split = time_split(data, validation_share)
    model = fit(train, l2=l2)
    y = valid["outcome"].to_numpy().astype(float)
    raw_price = np.clip(valid["price"].to_numpy(), 0.0, 1.0)
    model_brier, model_log_loss = evaluate(model, valid)
    metrics = Metrics(
        brier=model_brier,
        log_loss=model_log_loss,
        baseline_brier=brier(raw_price, y),
        baseline_log_loss=log_loss(raw_price, y),
        train_rows=train.height,
        validation_rows=valid.height,
        split_resolved_s=split,
    )
    return model, metrics, valid


def promotion_decision(metrics: Metrics, incumbent_log_loss: float | None) -> tuple[bool, str]:
    """Promote only a model that beats the current one on the same validation data; with no
    current model, the raw market price is the one to beat."""
    if incumbent_log_loss is None:
        if metrics.beats(metrics.baseline_log_loss):
            return True, f"log loss {metrics.log_loss:.5f} < raw price {metrics.baseline_log_loss:.5f}"
        return (
            False,
            f"log loss {metrics.log_loss:.5f} does not beat raw price {metrics.baseline_log_loss:.5f}",
        )
    if metrics.beats(incumbent_log_loss):
        return True, f"log loss {metrics.log_loss:.5f} < current model {incumbent_log_loss:.5f}"
    return False, f"log loss {metrics.log_loss:.5f} does not beat current model {incumbent_log_loss:.5f}"


def metrics_dict(metrics: Metrics) -> dict[str, float | int]:
    return msgspec.structs.asdict(metrics)


def simulate_calibration(*, seed: int = 11, markets: int = 600) -> pl.DataFrame:
    """Deterministic resolved markets whose prices are over-confident at long horizons, for runs
    without recorded data: the true probability is a shrunk version of the quoted one."""
    rng = np.random.default_rng(seed)
    horizons = np.array([86_400, 604_800, 2_592_000, 15_552_000])
    rows: dict[str, list[Any]] = {name: [] for name in CALIBRATION_SCHEMA}
    for i in range(markets):
        true_logit = rng.normal(-1.0, 2.0)
        resolved = 1_700_000_000 + i * 3_600
        outcome = int(rng.random() < _sigmoid(np.array(true_logit)))
        volume = float(np.exp(rng.normal(9, 2)))
        for horizon in horizons:
            noise = rng.normal(0, 0.3 + 0.15 * math.log(horizon / 86_400 + 1))
            price = float(_sigmoid(np.array(1.3 * true_logit + noise)))
            rows["market"].append(f"sim-{i}")
            rows["category"].append(("election", "sports", "crypto")[i % 3])
            rows["horizon_s"].append(int(horizon))
            rows["price"].append(round(price, 4))
            rows["volume"].append(volume)
            rows["outcome"].append(outcome)
            rows["resolved_s"].append(resolved)
    return pl.DataFrame(rows, schema=CALIBRATION_SCHEMA)


def model_from_json(raw: bytes) -> CalibrationModel:
    return msgspec.json.decode(raw, type=CalibrationModel)


def model_to_json(model: CalibrationModel) -> bytes:
    return msgspec.json.format(msgspec.json.encode(model))
