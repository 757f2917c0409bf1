"""The LoL win model: series odds, the split, the time extension, and that it beats the naive baseline
on real games it never saw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pets.pipelines.esports import winmodel as wm
from pets.pipelines.esports.riot_timeline import replay
from pets.schemas.signals import GameSnapshot, TeamState

DIAMOND = ("esports", "datasets", "lol_diamond_ranked_10min.csv")


def test_series_probability_by_counting_the_ways_to_win() -> None:
    # best of 3 from 0-0: win 2-0 (p^2) or 2-1 in two orders (2 p^2 (1 - p))
    assert wm.series_probability(0.6, 2) == pytest.approx(0.36 + 2 * 0.36 * 0.4)
    # best of 5 at 2-1: win the next game, or lose it and win the decider
    assert wm.series_probability(0.5, 3, won=2, lost=1) == pytest.approx(0.75)
    # best of 5 at 0-2 needs three straight wins
    assert wm.series_probability(0.7, 3, won=0, lost=2) == pytest.approx(0.7**3)
    assert wm.series_probability(0.2, 2, won=2) == 1.0 and wm.series_probability(0.9, 2, lost=2) == 0.0
    assert wm.series_probability(0.5, 3) == pytest.approx(0.5)


def test_a_csv_without_the_columns_names_them(tmp_path: Path) -> None:
    bad = tmp_path / "games.csv"
    bad.write_text("gameId,blueWins,blueTotalGold\n1,1,100\n")
    with pytest.raises(wm.WinDataError, match="blueDragons, redDragons, redTotalGold"):
        wm.read_games(bad)


def snapshot(blue_gold: int, red_gold: int, blue_dragons: int = 0, red_dragons: int = 0) -> GameSnapshot:
    return GameSnapshot(
        state="in_game",
        blue=TeamState(team="b", gold=blue_gold, dragons=blue_dragons),
        red=TeamState(team="r", gold=red_gold, dragons=red_dragons),
    )


def model() -> wm.WinModel:
    return wm.WinModel(
        features=("gold_diff", "dragon_diff"), weights=(0.1, 1.5, 0.3),
        means={"gold_diff": 0.0, "dragon_diff": 0.0}, scales={"gold_diff": 2500.0, "dragon_diff": 1.0},
        reference_total_gold=30_000.0, l2=1.0,
    )  # fmt: skip


def test_a_gold_lead_counts_in_proportion_to_the_gold_in_the_game() -> None:
    m = model()
    at_ten = wm.blue_win_probability(m, snapshot(16_000, 14_000))  # lead 2000 of 30000
    late = wm.blue_win_probability(m, snapshot(32_000, 28_000))  # lead 4000 of 60000: the same share
    assert late == pytest.approx(at_ten)
    # by hand: z = 0.1 + 1.5 x 2000 / 2500 = 1.3
    assert at_ten == pytest.approx(1 / (1 + np.exp(-1.3)))
    # a dragon lead adds 0.3 to the logit
    assert wm.blue_win_probability(m, snapshot(15_000, 15_000, 1, 0)) == pytest.approx(1 / (1 + np.exp(-0.4)))


def test_the_split_validates_on_the_latest_games() -> None:
    games = pl.DataFrame({"game_id": [5, 1, 4, 2, 3, 8, 7, 6], "outcome": [1, 0] * 4})
    train, valid, split = wm.split_by_game(games, 0.25)
    assert train["game_id"].to_list() == [1, 2, 3, 4, 5, 6] and valid["game_id"].to_list() == [7, 8]
    assert split == 7


@pytest.mark.shared_data
def test_the_model_beats_the_naive_baseline_on_real_games_it_never_saw(shared_data: Path) -> None:
    data = wm.read_games(shared_data.joinpath(*DIAMOND))
    model, metrics, valid = wm.train_and_score(data)
    assert (metrics.train_games, metrics.validation_games) == (6000, 2000)
    y = valid["outcome"].to_numpy().astype(float)
    # the naive forecast: the training blue win rate for every game
    rate = float(data.sort("game_id").head(6000)["outcome"].mean())  # type: ignore[arg-type]
    assert metrics.baseline_brier == pytest.approx(float(np.mean((rate - y) ** 2)))
    assert metrics.brier < metrics.baseline_brier - 0.05 and metrics.log_loss < metrics.baseline_log_loss
    assert metrics.accuracy > 0.68 > metrics.baseline_accuracy
    # the scalar form the live flow uses gives the frame's predictions
    rows = valid.head(50)
    scalar = [
        wm.blue_win_probability(
            model, snapshot(int(15_000 + g / 2), int(15_000 - g / 2), int(max(d, 0)), int(max(-d, 0)))
        )
        for g, d, total in rows.select("gold_diff", "dragon_diff", "total_gold").rows()
        if total
    ]
    scaled = rows.with_columns(gold_diff=pl.col("gold_diff") * model.reference_total_gold / 30_000)
    assert np.allclose(scalar, wm.predict_frame(model, scaled), atol=1e-3)


@pytest.mark.shared_data
def test_per_minute_probabilities_on_the_real_timelines_favour_the_winner(shared_data: Path) -> None:
    """Both recorded solo-queue games were won by red (team 200, as match_data says for NA1)."""
    data = wm.read_games(shared_data.joinpath(*DIAMOND))
    model, _, _ = wm.train_and_score(data)
    squared = []
    for name in ("lol_NA1_4729149632_match_timeline.json", "lol_ericcui_match_timeline.json"):
        timeline = json.loads((shared_data / "esports" / name).read_text())
        minutes = {int(f["timestamp"]) for f in timeline["info"]["frames"]}
        frames = [f for f in replay(timeline, 0) if f.game_time_ms in minutes and f.game_time_ms >= 60_000]
        assert frames[-1].snapshot.winner == "200"
        frames = [f for f in frames if f.snapshot.state == "in_game"]
        squared += [wm.blue_win_probability(model, f.snapshot) ** 2 for f in frames]
    assert len(squared) == 49 and float(np.mean(squared)) < 0.25
