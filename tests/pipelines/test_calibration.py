"""Calibration model: scores, the fit's optimality, the time split, promotion, and the real data set."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pets.pipelines import calibration as cal


def test_brier_and_log_loss_by_hand() -> None:
    p, y = np.array([0.8, 0.3]), np.array([1.0, 0.0])
    assert cal.brier(p, y) == pytest.approx((0.2**2 + 0.3**2) / 2)
    assert cal.log_loss(p, y) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)


def _frame(
    prices: np.ndarray, outcomes: np.ndarray, horizons: np.ndarray, volumes: np.ndarray
) -> pl.DataFrame:
    n = len(prices)
    return pl.DataFrame(
        {
            "market": [f"m{i}" for i in range(n)],
            "category": ["a" if i % 2 else "b" for i in range(n)],
            "horizon_s": horizons.astype(np.int64),
            "price": prices,
            "volume": volumes,
            "outcome": outcomes.astype(np.int8),
            "resolved_s": np.arange(n, dtype=np.int64),
        },
        schema=cal.CALIBRATION_SCHEMA,
    )


def test_fit_reaches_the_penalized_optimum_and_recovers_a_known_model() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    prices = rng.uniform(0.02, 0.98, n)
    horizons = rng.choice([86_400, 604_800, 2_592_000], n)
    volumes = np.exp(rng.normal(8, 1.5, n))
    logit = np.log(prices / (1 - prices))
    truth = 1 / (1 + np.exp(-(0.3 + 0.7 * logit)))  # prices over-confident: true slope 0.7
    frame = _frame(prices, (rng.random(n) < truth).astype(int), horizons, volumes)
    model = cal.fit(frame, l2=1.0)
    # First-order optimality of the penalized likelihood: gradient ~ 0 at the fitted weights.
    x = cal._design(frame, model)
    w = np.asarray(model.weights)
    y = frame["outcome"].to_numpy().astype(float)
    penalty = np.full(len(w), 1.0)
    penalty[0] = 0
    gradient = x.T @ (1 / (1 + np.exp(-(x @ w))) - y) + penalty * w
    assert np.max(np.abs(gradient)) < 1e-6
    # The logit slope in raw units is weight / scale of the standardized feature: ~0.7.
    slope = model.weights[model.features.index("logit_price")] / model.scales["logit_price"]
    assert slope == pytest.approx(0.7, abs=0.05)
    # And it forecasts better than the over-confident raw price.
    p = model.predict(frame)
    assert cal.log_loss(p, y) < cal.log_loss(prices, y)


def test_time_split_keeps_every_event_on_one_side() -> None:
    data = cal.simulate_calibration(markets=200)
    train, valid, split = cal.time_split(data, 0.25)
    assert int(train["resolved_s"].max()) < split <= int(valid["resolved_s"].min())  # type: ignore[arg-type]
    assert not set(train["market"]) & set(valid["market"])
    assert train.height + valid.height == data.height


def test_promotion_needs_a_better_log_loss() -> None:
    data = cal.simulate_calibration()
    model, metrics, valid = cal.train_and_score(data)
    assert metrics.log_loss < metrics.baseline_log_loss  # simulated prices are over-confident
    assert cal.promotion_decision(metrics, None)[0] is True
    _, same = cal.evaluate(model, valid)
    promote, reason = cal.promotion_decision(metrics, same)
    assert promote is False and "does not beat current model" in reason
    assert cal.promotion_decision(metrics, metrics.log_loss + 0.01)[0] is True


def test_model_json_round_trip_predicts_the_same() -> None:
    data = cal.simulate_calibration(markets=100)
    model, _, valid = cal.train_and_score(data)
    again = cal.model_from_json(cal.model_to_json(model))
    assert np.array_equal(again.predict(valid), model.predict(valid))


def test_missing_calibration_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(cal.CalibrationDataError, match=r"market_data_one_day_before_certainty\.csv: missing"):
        cal.read_calibration_dir(tmp_path)


@pytest.mark.shared_data
def test_real_calibration_data(shared_data: Path) -> None:
    data = cal.read_calibration_dir(shared_data / "calibration")
    assert data.height == 1446 + 1108 + 559 + 122
    assert set(data["horizon_s"].unique()) == {86_400, 604_800, 2_592_000, 15_552_000}
    assert set(data["outcome"].unique()) == {0, 1}
    assert data["price"].is_between(0, 1).all()
    model, metrics, _ = cal.train_and_score(data)
    assert metrics.train_rows + metrics.validation_rows == data.height
    for value in (metrics.brier, metrics.log_loss, metrics.baseline_brier, metrics.baseline_log_loss):
        assert math.isfinite(value) and value > 0
    assert model.features[:2] == ("intercept", "logit_price")
