"""League of Legends win probability: P(blue wins the game | game state at minute t).

A penalized logistic regression (Newton's method in numpy, the calibration model's recipe) on two
leads every live feed reports: gold and dragons. Trained on real games at minute 10
(`lol_diamond_ranked_10min.csv`, the `blue*`/`red*` columns and `blueWins`). Kill and tower leads add
nothing on those games once gold is known (log loss 0.5476 with them, 0.5481 without) and their fitted
weights come out negative (collinear with gold), which would make a late-game tower lead count against
its team: they, and barons and inhibitors (absent from the 10-minute data), count through the gold they
give, which is in the team totals.

Beyond minute 10 (the documented assumption, docs/esports.md): a gold lead counts in proportion to the
gold in the game, so the gold lead at minute t enters as lead x (mean total gold at minute 10 / total
gold at t); the dragon lead enters as it is. A finished game is certain and never asks the model.

Split: games ordered by `gameId` (Riot's ids grow with time on a platform): the latest quarter
validates. The naive baseline predicts the training blue win rate for every game.
"""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import numpy as np
import polars as pl

from pets.pipelines.calibration import brier, log_loss
from pets.schemas.signals import GameSnapshot

FEATURES = ("gold_diff", "dragon_diff")
REQUIRED_COLUMNS = ("gameId", "blueWins", "blueTotalGold", "redTotalGold", "blueDragons", "redDragons")
MODEL_NAME = "esports_win"  # the model store's name (the esports_win_model asset)


class WinDataError(ValueError):
    """Unusable training or evaluation data: names the file and what is wrong."""


class WinModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything needed to predict: weights over standardized leads, and minute 10's mean gold."""

    features: tuple[str, ...]
    weights: tuple[float, ...]  # intercept first
    means: dict[str, float]
    scales: dict[str, float]
    reference_total_gold: float  # mean gold of both teams at minute 10 in the training games
    l2: float


class WinMetrics(msgspec.Struct, frozen=True, kw_only=True):
    brier: float
    log_loss: float
    accuracy: float
    baseline_brier: float
    baseline_log_loss: float
    baseline_accuracy: float
    train_games: int
    validation_games: int
    split_game_id: int  # games with an id at or above it validate


def read_games(path: Path) -> pl.DataFrame:
    """A CSV with the diamond-ranked columns, as game id, leads (blue minus red), total gold, outcome."""
    try:
        raw = pl.read_csv(path, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise WinDataError(f"{path}: {exc}") from None
    missing = set(REQUIRED_COLUMNS) - set(raw.columns)
    if missing:
        raise WinDataError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    if raw.height == 0:
        raise WinDataError(f"{path}: no games")
    num = {c: pl.col(c).cast(pl.Float64) for c in REQUIRED_COLUMNS[2:]}
    return raw.select(
        game_id=pl.col("gameId").cast(pl.Int64),
        gold_diff=num["blueTotalGold"] - num["redTotalGold"],
        dragon_diff=num["blueDragons"] - num["redDragons"],
        total_gold=num["blueTotalGold"] + num["redTotalGold"],
        outcome=pl.col("blueWins").cast(pl.Int8),
    )


def split_by_game(
    data: pl.DataFrame, validation_share: float = 0.25
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    ordered = data.sort("game_id")
    at = min(ordered.height - 1, int(ordered.height * (1 - validation_share)))
    split = int(ordered["game_id"][at])
    train, valid = ordered.filter(pl.col("game_id") < split), ordered.filter(pl.col("game_id") >= split)
    if train.height == 0 or valid.height == 0:
        raise WinDataError(f"cannot split {data.height} games by id: one side would be empty")
    return train, valid, split


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _design(frame: pl.DataFrame, model: WinModel) -> np.ndarray:
    columns = [np.ones(frame.height)]
    for name in model.features:
        columns.append((frame[name].to_numpy() - model.means[name]) / model.scales[name])
    return np.column_stack(columns)


def fit(train: pl.DataFrame, *, l2: float = 1.0, iterations: int = 50) -> WinModel:
    means = {n: float(train[n].mean() or 0.0) for n in FEATURES}  # type: ignore[arg-type]
    scales = {n: float(train[n].std() or 1.0) or 1.0 for n in FEATURES}  # type: ignore[arg-type]
    template = WinModel(
        features=FEATURES, weights=(0.0,) * (len(FEATURES) + 1), means=means, scales=scales,
        reference_total_gold=float(train["total_gold"].mean() or 0.0), l2=l2,  # type: ignore[arg-type]
    )  # fmt: skip
    x = _design(train, template)
    y = train["outcome"].to_numpy().astype(float)
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = _sigmoid(x @ w)
        step = np.linalg.solve(
            (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty), x.T @ (p - y) + penalty * w
        )
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return msgspec.structs.replace(template, weights=tuple(float(v) for v in w))


def predict_frame(model: WinModel, frame: pl.DataFrame) -> np.ndarray:
    return _sigmoid(_design(frame, model) @ np.asarray(model.weights))


def accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p >= 0.5) == (y >= 0.5)))


def score(model: WinModel, games: pl.DataFrame) -> tuple[float, float, float]:
    """(Brier, log loss, accuracy) of the model on games."""
    y = games["outcome"].to_numpy().astype(float)
    p = predict_frame(model, games)
    return brier(p, y), log_loss(p, y), accuracy(p, y)


def train_and_score(
    data: pl.DataFrame, *, validation_share: float = 0.25, l2: float = 1.0
) -> tuple[WinModel, WinMetrics, pl.DataFrame]:
    train, valid, split = split_by_game(data, validation_share)
    model = fit(train, l2=l2)
    y = valid["outcome"].to_numpy().astype(float)
    naive = np.full(valid.height, float(train["outcome"].mean() or 0.0))  # type: ignore[arg-type]
    model_brier, model_log_loss, model_accuracy = score(model, valid)
    metrics = WinMetrics(
        brier=model_brier, log_loss=model_log_loss, accuracy=model_accuracy,
        baseline_brier=brier(naive, y), baseline_log_loss=log_loss(naive, y),
        baseline_accuracy=accuracy(naive, y),
        train_games=train.height, validation_games=valid.height, split_game_id=split,
    )  # fmt: skip
    return model, metrics, valid


def promotion_decision(metrics: WinMetrics, incumbent_log_loss: float | None) -> tuple[bool, str]:
    """Promote only a model that beats the promoted one on the same validation games; with none
    promoted, the naive baseline is the one to beat."""
    if incumbent_log_loss is None:
        bar, what = metrics.baseline_log_loss, "naive baseline"
    else:
        bar, what = incumbent_log_loss, "current model"
    if metrics.log_loss < bar:
        return True, f"log loss {metrics.log_loss:.5f} < {what} {bar:.5f}"
    return False, f"log loss {metrics.log_loss:.5f} does not beat {what} {bar:.5f}"


def blue_win_probability(model: WinModel, snapshot: GameSnapshot) -> float:
    """P(blue wins) at any minute: leads blue minus red, the gold lead rescaled to minute 10's gold."""
    blue, red = snapshot.blue, snapshot.red
    total = blue.gold + red.gold
    scale = model.reference_total_gold / total if total > 0 else 1.0
    raw = {"gold_diff": (blue.gold - red.gold) * scale, "dragon_diff": float(blue.dragons - red.dragons)}
    z = model.weights[0]
    for name, weight in zip(model.features, model.weights[1:], strict=True):
        z += weight * (raw[name] - model.means[name]) / model.scales[name]
    return 1 / (1 + math.exp(-z))


def series_probability(p_game: float, wins_needed: int, won: int = 0, lost: int = 0) -> float:
    """P(winning a best-of-(2 x wins_needed - 1) series) at a score of won-lost, games independent with
    probability p_game each: the chance of taking the missing wins before the opponent does."""
    need, other = wins_needed - won, wins_needed - lost
    if need <= 0:
        return 1.0
    if other <= 0:
        return 0.0
    # the series ends on our need-th win after k of the opponent's wins, k < other
    return sum(math.comb(need - 1 + k, k) * p_game**need * (1 - p_game) ** k for k in range(other))


def model_from_json(raw: bytes) -> WinModel:
    return msgspec.json.decode(raw, type=WinModel)


def model_to_json(model: WinModel) -> bytes:
    return msgspec.json.format(msgspec.json.encode(model))
